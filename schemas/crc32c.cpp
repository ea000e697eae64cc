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
// Three streams at once hide the crc32 instruction's latency: the three
// thirds of a span are CRCed side by side, then joined by shifting a CRC
// over the bytes that follow it (a linear map: a table per shift length).
constexpr size_t long_span = 8192, short_span = 256;

// The matrix (over GF(2)) that appends one zero bit to a CRC register, squared
// until it appends `bytes` zero bytes (a power of two).
using Matrix = std::array<uint32_t, 32>;

constexpr uint32_t times(const Matrix& m, uint32_t v) {
  uint32_t sum = 0;
  for (size_t i = 0; v; ++i, v >>= 1)
    if (v & 1u)
      sum ^= m[i];
  return sum;
}

constexpr Matrix square(const Matrix& m) {
  Matrix out{};
  for (size_t i = 0; i < 32; ++i)
    out[i] = times(m, m[i]);
  return out;
}

using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;

constexpr ShiftTable shift_table(size_t bytes) {
  Matrix op{};
  op[0] = poly;
  for (size_t i = 1; i < 32; ++i)
    op[i] = uint32_t{1} << (i - 1);
  for (size_t bits = 1; bits < bytes * 8; bits *= 2)
    op = square(op);
  ShiftTable t{};
  for (uint32_t b = 0; b < 256; ++b)
    for (size_t k = 0; k < 4; ++k)
      t[k][b] = times(op, b << (8 * k));
  return t;
}

const ShiftTable shift_long = shift_table(long_span);
const ShiftTable shift_short = shift_table(short_span);

uint32_t shift(const ShiftTable& t, uint32_t c) {
  return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint64_t crc_word(uint64_t c, const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return _mm_crc32_u64(c, w);
}

__attribute__((target("sse4.2"))) uint32_t hardware(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c0 = ~crc;
  for (size_t span : {long_span, short_span}) {
    const ShiftTable& t = span == long_span ? shift_long : shift_short;
    for (; n >= 3 * span; n -= 3 * span, p += 3 * span) {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < span; i += 8) {
        c0 = crc_word(c0, p + i);
        c1 = crc_word(c1, p + span + i);
        c2 = crc_word(c2, p + 2 * span + i);
      }
      c0 = shift(t, static_cast<uint32_t>(c0)) ^ c1;
      c0 = shift(t, static_cast<uint32_t>(c0)) ^ c2;
    }
  }
  for (; n >= 8; n -= 8, p += 8)
    c0 = crc_word(c0, p);
  auto c32 = static_cast<uint32_t>(c0);
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
