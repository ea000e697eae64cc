// The set of byte values a stream uses (a dataset's tokenizer vocabulary),
// gathered at memory speed: blocks whose bytes are all in the set already,
// nearly every block of a text once its alphabet has been seen, are tested
// 32 bytes at a time (AVX2) and not written to the set at all.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace orbitrain {

class ByteSet {
public:
  /// Adds every byte of data[0, size).
  void add(const uint8_t* data, size_t size);
  bool contains(uint8_t b) const { return (bits_[b >> 6] >> (b & 63)) & 1u; }
  /// The values in the set, ascending.
  std::vector<uint8_t> values() const;

private:
  void add_scalar(const uint8_t* data, size_t size);
  std::array<uint64_t, 4> bits_{};
};

} // namespace orbitrain
