// bfloat16 as the engine stores it: the upper 16 bits of an IEEE float, in a
// uint16_t. Rounding is to nearest, ties to even (inputs are finite in
// training), the same as oneDNN's and the CPU's conversions.
#pragma once

#include <cstdint>
#include <cstring>

namespace orbitrain::compute {

[[nodiscard]] inline uint16_t bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

[[nodiscard]] inline float bf16_to_float(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Kernels that write a tensor either in f32 or, for the bf16 matmuls that
// are its only readers, directly in bf16 store through this.
inline void store(float* p, float v) {
  *p = v;
}
inline void store(uint16_t* p, float v) {
  *p = bf16_round(v);
}
inline float load(float v) {
  return v;
}
inline float load(uint16_t h) {
  return bf16_to_float(h);
}

} // namespace orbitrain::compute
