// The hot path of training traffic, without CAF: parameters and gradients
// travel as flat f32 frames of at most `frame_floats` each (schemas/codec's
// encode_flat_frame), in buffer order for parameters (the order forward reads
// them) and in the order backward finishes gradients.
//
// ParamLanding is where a worker's actor puts parameter frames as they
// arrive and where its compute thread takes them, block by block, while the
// rest is still on the way. ParamStream cuts a parameter set into frames as
// the optimizer finishes prefixes of it. GradientFrames keeps one task's
// gradient frames (the received buffers themselves, no copy) until it is
// summed.
#pragma once

#include "schemas/codec.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace orbitrain {

inline constexpr size_t frame_floats = msg::default_frame_bytes / sizeof(float);

/// Frames needed for [begin, end) of a flat tensor.
inline uint32_t frames_in(size_t begin, size_t end) {
  return static_cast<uint32_t>((end - begin + frame_floats - 1) / frame_floats);
}

/// Frames one backward pass sends: the gradient ranges between successive
/// `boundaries` (Gpt::gradient_boundaries), starting from the end `n`.
uint32_t gradient_frame_count(const std::vector<size_t>& boundaries, size_t n);

class ParamLanding {
public:
  /// Keeps a parameter frame (worker actor) without copying it: `keeper`
  /// owns the received bytes the view `frame` points into (the message
  /// itself) and is held until the set is replaced. Frames of a set arrive
  /// in order; a frame at offset 0 starts a set (a new version). False when
  /// the frame does not continue the set being received.
  bool land(const msg::FlatFrameView& frame, std::shared_ptr<const void> keeper);

  /// Makes `dst[copied, end)` the parameters of `version` (compute thread),
  /// waiting until they have arrived. Throws when the landing moves on to
  /// another version first or is closed.
  void take(uint64_t version, size_t end, float* dst, size_t& copied);

  /// Waits for the first frame of any set; its version.
  uint64_t wait_any();

  /// Wakes and fails every waiter (the worker is going away).
  void close();

private:
  struct Piece {
    std::shared_ptr<const void> keeper; // owns `data`
    size_t offset = 0, count = 0;
    const float* data = nullptr;
  };
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t version_ = UINT64_MAX; // the set being received, or received
  size_t ready_ = 0;              // floats [0, ready_) of it are in pieces_
  size_t total_ = 0;              // floats in the whole set
  std::vector<Piece> pieces_;     // the frames of the set, in order
  bool closed_ = false;
};

/// Sends a parameter set of `n` floats frame by frame as prefixes of it
/// become final: `send(begin, end)` for aligned frames [k*frame_floats, ...).
class ParamStream {
public:
  ParamStream(size_t n, std::function<void(size_t begin, size_t end)> send)
      : n_(n), send_(std::move(send)) {}
  /// Parameters [0, end) are final.
  void progress(size_t end);
  bool done() const { return sent_ == n_; }

private:
  size_t n_, sent_ = 0;
  std::function<void(size_t, size_t)> send_;
};

/// A sync step's gradient sum, built frame by frame while the frames
/// arrive instead of after the last result: each frame range is micro-batch
/// 0 plus 1 (one pass, once both are in), then plus 2, 3, ... in that order
/// (the order train-local sums in), as soon as the frames before it in that
/// order are in. Only the first task seen for each micro-batch is summed; when the
/// results finally accepted are of other tasks (a task re-assigned, failed,
/// or computed on other parameters), complete() says no and the caller sums
/// the accepted frames itself. Frame data must stay valid until reset() or
/// until drop() is called for its task.
class OrderedSum {
public:
  /// A new step of `micro_batches` micro-batches.
  void reset(uint32_t micro_batches);
  /// A frame of `task` for micro-batch `mb` (frame `index` of `count`
  /// frames, floats [offset, offset + floats) of the gradient, at `data`).
  /// Adds to `sum` whatever this frame makes summable.
  void offer(float* sum, uint64_t task, uint32_t mb, uint32_t index, uint32_t count, size_t offset,
             size_t floats, const float* data);
  /// The frames of `task` are going away: if they were being summed, the
  /// sum is abandoned (complete() is false from now on).
  void drop(uint64_t task);
  /// Whether `sum` is the whole ordered sum of tasks[mb] for every micro-batch.
  bool complete(const std::vector<uint64_t>& tasks) const;

private:
  struct Piece {
    const float* data = nullptr;
    size_t offset = 0, floats = 0;
    bool present = false;
  };
  uint32_t m_ = 0, count_ = 0, finished_ = 0;
  std::vector<std::optional<uint64_t>> task_; // per micro-batch: the task summed
  std::vector<std::vector<Piece>> pieces_;    // [micro-batch][frame index]
  std::vector<uint32_t> applied_;             // per frame: micro-batches [0, n) summed
  bool broken_ = false;
};

/// One task's gradient frames, kept as received.
struct GradientFrames {
  struct Frame {
    msg::Bytes bytes; // owns the data below
    size_t offset = 0, count = 0;
    const float* data = nullptr;
  };
  std::vector<Frame> frames;
  size_t floats = 0;

  /// Adds (+=) every frame into sum, or copies them when `copy`.
  void add_to(float* sum, bool copy) const;
};

} // namespace orbitrain
