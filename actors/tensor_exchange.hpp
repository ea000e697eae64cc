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
#include <mutex>
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
  /// Puts a parameter frame in place (worker actor). Frames of a set arrive
  /// in order; a frame at offset 0 starts a set (a new version). False when
  /// the frame does not continue the set being received.
  bool land(const msg::FlatFrameView& frame);

  /// Makes `dst[copied, end)` the parameters of `version` (compute thread),
  /// waiting until they have arrived. Throws when the landing moves on to
  /// another version first or is closed.
  void take(uint64_t version, size_t end, float* dst, size_t& copied);

  /// Waits for the first frame of any set; its version.
  uint64_t wait_any();

  /// Wakes and fails every waiter (the worker is going away).
  void close();

private:
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t version_ = UINT64_MAX; // the set being received, or received
  size_t ready_ = 0;              // floats [0, ready_) of it are in data_
  std::vector<float> data_;
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

/// One task's gradient frames, kept as received.
struct GradientFrames {
  struct Frame {
    std::vector<uint8_t> bytes; // owns the data below
    size_t offset = 0, count = 0;
    const float* data = nullptr;
  };
  std::vector<Frame> frames;
  size_t floats = 0;

  /// Adds (+=) every frame into sum, or copies them when `copy`.
  void add_to(float* sum, bool copy) const;
};

} // namespace orbitrain
