// Implementation of crc32c.hpp: SSE4.2's crc32 instruction, eight bytes at a
// time, chosen at run time; slicing-by-8 tables otherwise.
#include "schemas/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace orbitrain {

namespace {

constexpr uint32_t poly = 0x82F63B78u; // reflected Castagnoli polynomial

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c >> 1) ^ ((c & 1u) ? poly : 0u);
    t[0][i] = c;
  }
  for (size_t s = 1; s < 8; ++s)
    for (size_t i = 0; i < 256; ++i)
      t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xffu];
  return t;
}

constexpr Tables tables = make_tables();

uint32_t portable(const uint8_t* p, size_t n, uint32_t crc) {
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c; // little-endian words (x86_64, aarch64)
    c = tables[7][lo & 0xff] ^ tables[6][(lo >> 8) & 0xff] ^ tables[5][(lo >> 16) & 0xff] ^
        tables[4][lo >> 24] ^ tables[3][hi & 0xff] ^ tables[2][(hi >> 8) & 0xff] ^
        tables[1][(hi >> 16) & 0xff] ^ tables[0][hi >> 24];
  }
  for (; n > 0; --n, ++p)
    c = (c >> 8) ^ tables[0][(c ^ *p) & 0xff];
  return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t hardware(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++p)
    c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

// Read before main(): __builtin_cpu_init() first, as GCC asks of callers
// that may run before its own constructor.
const bool has_sse42 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}();
#endif

} // namespace

uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc) {
#if defined(__x86_64__)
  if (has_sse42)
    return hardware(data, size, crc);
#endif
  return portable(data, size, crc);
}

uint32_t crc32c_portable(const uint8_t* data, size_t size, uint32_t crc) {
  return portable(data, size, crc);
}

} // namespace orbitrain
