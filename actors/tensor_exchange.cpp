// Implementation of tensor_exchange.hpp.
#include "actors/tensor_exchange.hpp"

#include "compute/trainer.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace orbitrain {

uint32_t gradient_frame_count(const std::vector<size_t>& boundaries, size_t n) {
  uint32_t count = 0;
  size_t end = n;
  for (size_t b : boundaries) {
    if (b < end)
      count += frames_in(b, end);
    end = std::min(end, b);
  }
  return count;
}

bool ParamLanding::land(const msg::FlatFrameView& f, std::shared_ptr<const void> keeper) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (f.offset_floats == 0) {
      version_ = f.header.version;
      ready_ = 0;
      total_ = f.total_floats;
      pieces_.clear();
    }
    if (f.header.version != version_ || f.offset_floats != ready_ || f.total_floats != total_)
      return false;
    pieces_.push_back(Piece{std::move(keeper), f.offset_floats, f.count, f.data});
    ready_ += f.count;
  }
  cv_.notify_all();
  return true;
}

void ParamLanding::take(uint64_t version, size_t end, float* dst, size_t& copied) {
  if (copied >= end)
    return;
  std::unique_lock<std::mutex> lock(m_);
  cv_.wait(lock, [&] { return closed_ || version_ != version || ready_ >= end; });
  if (closed_)
    throw std::runtime_error("the worker is stopping");
  if (version_ != version)
    throw std::runtime_error("parameters moved on from version " + std::to_string(version) +
                             " to " + std::to_string(version_));
  for (const Piece& p : pieces_) {
    const size_t b = std::max(copied, p.offset), e = std::min(end, p.offset + p.count);
    if (b < e)
      std::memcpy(dst + b, p.data + (b - p.offset), (e - b) * sizeof(float));
  }
  copied = end;
}

uint64_t ParamLanding::wait_any() {
  std::unique_lock<std::mutex> lock(m_);
  cv_.wait(lock, [&] { return closed_ || version_ != UINT64_MAX; });
  if (closed_)
    throw std::runtime_error("the worker is stopping");
  return version_;
}

void ParamLanding::close() {
  {
    std::lock_guard<std::mutex> lock(m_);
    closed_ = true;
  }
  cv_.notify_all();
}

void ParamStream::progress(size_t end) {
  while (sent_ < n_ && std::min(sent_ + frame_floats, n_) <= end) {
    const size_t e = std::min(sent_ + frame_floats, n_);
    send_(sent_, e);
    sent_ = e;
  }
}

void OrderedSum::reset(uint32_t micro_batches) {
  m_ = micro_batches;
  count_ = finished_ = 0;
  task_.assign(m_, std::nullopt);
  pieces_.assign(m_, {});
  applied_.clear();
  broken_ = false;
}

void OrderedSum::offer(float* sum, uint64_t task, uint32_t mb, uint32_t index, uint32_t count,
                       size_t offset, size_t floats, const float* data) {
  if (broken_ || mb >= m_)
    return;
  if (count_ == 0) {
    count_ = count;
    applied_.assign(count_, 0);
    for (auto& p : pieces_)
      p.assign(count_, Piece{});
  }
  if (!task_[mb])
    task_[mb] = task;
  if (*task_[mb] != task)
    return; // another task's copy of this micro-batch: summed only if accepted
  if (count != count_ || index >= count_ || pieces_[mb][index].present) {
    broken_ = true; // not the frames a sum can be built from
    return;
  }
  pieces_[mb][index] = Piece{data, offset, floats, true};
  const Piece& first = pieces_[0][index];
  // Micro-batches cut into different frames cannot be summed frame by frame.
  auto cut_differs = [&](const Piece& p) {
    return p.offset != first.offset || p.floats != first.floats;
  };
  const uint32_t before = applied_[index];
  while (applied_[index] < m_) {
    const uint32_t k = applied_[index];
    const Piece& p = pieces_[k][index];
    if (!p.present)
      break;
    if (cut_differs(p)) {
      broken_ = true;
      return;
    }
    if (k == 0 && m_ > 1) {
      // Micro-batch 0 waits for 1, and the two are summed in one pass.
      const Piece& second = pieces_[1][index];
      if (!second.present)
        break;
      if (cut_differs(second)) {
        broken_ = true;
        return;
      }
      compute::add_gradients(sum + p.offset, p.data, second.data, p.floats);
      applied_[index] = 2;
      continue;
    }
    if (k == 0)
      std::memcpy(sum + p.offset, p.data, p.floats * sizeof(float));
    else
      compute::accumulate_gradients(sum + p.offset, p.data, p.floats);
    ++applied_[index];
  }
  if (before < m_ && applied_[index] == m_)
    ++finished_;
}

void OrderedSum::drop(uint64_t task) {
  for (const auto& t : task_)
    if (t && *t == task)
      broken_ = true;
}

bool OrderedSum::complete(const std::vector<uint64_t>& tasks) const {
  if (broken_ || count_ == 0 || finished_ != count_ || tasks.size() != m_)
    return false;
  for (uint32_t k = 0; k < m_; ++k)
    if (!task_[k] || *task_[k] != tasks[k])
      return false;
  return true;
}

void GradientFrames::add_to(float* sum, bool copy) const {
  for (const auto& f : frames) {
    if (copy)
      std::memcpy(sum + f.offset, f.data, f.count * sizeof(float));
    else
      compute::accumulate_gradients(sum + f.offset, f.data, f.count);
  }
}

} // namespace orbitrain
