// Implementation of byte_set.hpp. The AVX2 test is the nibble-table set
// membership: for a byte with high nibble h and low nibble l, table[l] has
// bit (h mod 8) set if the value is in the set, one table for h < 8 and one
// for h >= 8, each looked up 32 bytes at a time with a byte shuffle.
#include "core/byte_set.hpp"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace orbitrain {

void ByteSet::add_scalar(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    bits_[p[i] >> 6] |= uint64_t{1} << (p[i] & 63);
}

std::vector<uint8_t> ByteSet::values() const {
  std::vector<uint8_t> out;
  for (unsigned b = 0; b < 256; ++b)
    if (contains(static_cast<uint8_t>(b)))
      out.push_back(static_cast<uint8_t>(b));
  return out;
}

#if defined(__x86_64__)
namespace {

const bool has_avx2 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}();

struct NibbleTables {
  __m256i low_half;  // values 0x00-0x7f
  __m256i high_half; // values 0x80-0xff
};

__attribute__((target("avx2"))) NibbleTables tables_of(const ByteSet& s) {
  alignas(32) uint8_t lo[32] = {}, hi[32] = {};
  for (unsigned v = 0; v < 256; ++v)
    if (s.contains(static_cast<uint8_t>(v))) {
      const unsigned l = v & 15, h = v >> 4;
      uint8_t* t = h < 8 ? lo : hi;
      t[l] |= static_cast<uint8_t>(1u << (h & 7));
      t[l + 16] = t[l]; // the same table in both 128-bit lanes
    }
  return {_mm256_load_si256(reinterpret_cast<const __m256i*>(lo)),
          _mm256_load_si256(reinterpret_cast<const __m256i*>(hi))};
}

// Bytes of p[0, 32 * blocks) not in the set described by `t`: true if any.
__attribute__((target("avx2"))) bool any_outside(const NibbleTables& t, const uint8_t* p,
                                                 size_t blocks) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  // bit (h mod 8) for high nibble h, in both lanes
  const __m256i bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128,
                                       1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  __m256i missing = _mm256_setzero_si256();
  for (size_t i = 0; i < blocks; ++i) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * i));
    const __m256i l = _mm256_and_si256(x, nibble);
    const __m256i h = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
    // The top bit of x picks the table for high nibbles 8-15.
    const __m256i row = _mm256_blendv_epi8(_mm256_shuffle_epi8(t.low_half, l),
                                           _mm256_shuffle_epi8(t.high_half, l), x);
    const __m256i hit = _mm256_and_si256(row, _mm256_shuffle_epi8(bit, h));
    missing = _mm256_or_si256(missing, _mm256_cmpeq_epi8(hit, _mm256_setzero_si256()));
  }
  return _mm256_movemask_epi8(missing) != 0;
}

} // namespace
#endif

void ByteSet::add(const uint8_t* p, size_t n) {
#if defined(__x86_64__)
  if (has_avx2) {
    // 4 KiB at a time: a span with a byte not seen yet is added byte by byte
    // (rare after the first spans of a file) and the tables rebuilt.
    constexpr size_t span = 4096;
    auto t = tables_of(*this);
    while (n >= 32) {
      const size_t m = std::min(span, n) / 32 * 32;
      if (any_outside(t, p, m / 32)) {
        add_scalar(p, m);
        t = tables_of(*this);
      }
      p += m;
      n -= m;
    }
  }
#endif
  add_scalar(p, n);
}

} // namespace orbitrain
