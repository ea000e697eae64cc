// Bytes <-> messages. encode() writes an Envelope as one flat Cap'n Proto
// message; decode() reads one back into owned values and validates it: a
// wrong protocol version, truncated or oversized input, a traversal-limit
// violation, a missing required field or an inconsistent tensor slice is an
// Error naming the problem (and the message kind when it is known), never a
// crash or an exception.
//
// Tensors larger than a frame are split by split_tensors() into TensorFrames
// of at most `max_frame_bytes` of data each; a FrameAssembler puts a set back
// together from frames arriving in any order.
#pragma once

#include "core/result.hpp"
#include "schemas/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace orbitrain::msg {

/// Frames of a few MiB keep CAF's I/O thread responsive (stack-notes.md).
inline constexpr size_t default_frame_bytes = size_t{4} << 20;

struct DecodeLimits {
  /// Larger inputs are refused before parsing.
  size_t max_message_bytes = size_t{64} << 20;
};

/// Bytes owned by someone else: a view, valid as long as its owner says.
struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

/// An allocator whose resize() leaves new bytes uninitialised: a buffer that
/// is about to be overwritten (an encoded message, bytes read off a socket)
/// is not zero-filled first.
template <class T> struct NoInitAllocator : std::allocator<T> {
  using value_type = T;
  template <class U> struct rebind { using other = NoInitAllocator<U>; };
  NoInitAllocator() = default;
  template <class U> NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible<U>::value) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args> void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

/// Encoded messages: a byte vector that is not zero-filled when resized.
using Bytes = std::vector<uint8_t, NoInitAllocator<uint8_t>>;

Bytes encode(const Envelope& envelope);

/// encode() of an envelope whose body is a DataChunk with empty `data`,
/// taking the chunk's bytes from `chunk_data` instead: they are copied once,
/// straight into the output (no intermediate message). The result decodes
/// like encode() of the same envelope with the bytes in `data`. `chunk_data`
/// must stay valid during the call; an envelope of another kind is an error.
Result<Bytes> encode_chunk(const Envelope& envelope, ByteView chunk_data);

Result<Envelope> decode(const uint8_t* data, size_t size, const DecodeLimits& limits = {});
inline Result<Envelope> decode(const std::vector<uint8_t>& bytes, const DecodeLimits& limits = {}) {
  return decode(bytes.data(), bytes.size(), limits);
}
inline Result<Envelope> decode(const Bytes& bytes, const DecodeLimits& limits = {}) {
  return decode(bytes.data(), bytes.size(), limits);
}

/// The hot path of gradients and parameters: a TensorFrame carrying one
/// slice of one flat f32 tensor `name` of `total_floats` elements, built
/// straight from `data` (one copy) and read back as a view into the received
/// bytes (no copy). The bytes are an ordinary Envelope: decode() reads them too.
Bytes encode_flat_frame(const std::string& sender, const std::string& job_id,
                        const TensorFrame& header, const std::string& name, uint64_t total_floats,
                        uint64_t offset_floats, const float* data, size_t count);

struct FlatFrameView {
  std::string sender, job_id;
  TensorFrame header; // no slices
  std::string name;
  uint64_t total_floats = 0, offset_floats = 0, count = 0;
  const float* data = nullptr; // into the decoded bytes: valid while they are
};

/// Validates like decode() (and that the frame is one f32 slice of a 1-D
/// tensor); the bytes must be 8-byte aligned, as a heap buffer is. Errors name
/// what is wrong; a message of another kind is Errc::invalid_argument.
Result<FlatFrameView> decode_flat_frame(const uint8_t* data, size_t size,
                                        const DecodeLimits& limits = {});

/// decode() with the bytes of a DataChunk body left where they are: the
/// body's `data` stays empty and `chunk_data` points at the bytes inside
/// `data` (or, when `data` is not 8-byte aligned, inside the returned
/// envelope's `data`, which then holds a copy). Valid while both live.
/// Bodies of other kinds are decoded as by decode(); `chunk_data` is empty.
Result<Envelope> decode_borrowing(const uint8_t* data, size_t size, ByteView& chunk_data,
                                  const DecodeLimits& limits = {});

/// A dataset manifest as stored on disk (a standalone Cap'n Proto message).
std::vector<uint8_t> encode_manifest(const DatasetManifest& manifest);
Result<DatasetManifest> decode_manifest(const uint8_t* data, size_t size);

/// A whole tensor, as split_tensors takes it and FrameAssembler yields it.
struct Tensor {
  std::string name;
  DType dtype = DType::f32;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> data; // little-endian, product(shape) * dtype_size bytes
};

/// Bytes a tensor of `dtype` and `shape` has; nullopt on overflow.
std::optional<uint64_t> tensor_bytes(DType dtype, const std::vector<uint64_t>& shape);

/// Splits `tensors` into frames carrying at most `max_frame_bytes` of tensor
/// data each (at least one frame, even for no tensors). `header` supplies
/// kind, version, step and task id; indices, counts and totals are filled in.
std::vector<TensorFrame> split_tensors(const std::vector<Tensor>& tensors,
                                       const TensorFrame& header,
                                       size_t max_frame_bytes = default_frame_bytes);

/// Collects the frames of one set (same kind, version, step and task id).
class FrameAssembler {
public:
  /// Adds a frame; an error if it does not fit the set (other set, index out
  /// of range, duplicate index, slices that overlap, overflow or disagree).
  Status add(TensorFrame frame);
  bool complete() const;
  /// The tensors in the order they first appeared; only when complete().
  Result<std::vector<Tensor>> take();

private:
  struct Partial {
    Tensor tensor;
    uint64_t filled = 0;
  };
  std::optional<TensorFrame> header_; // first frame's header (no slices)
  std::vector<bool> seen_;
  size_t frames_seen_ = 0;
  std::vector<std::string> order_;
  std::map<std::string, Partial> tensors_;
};

} // namespace orbitrain::msg
