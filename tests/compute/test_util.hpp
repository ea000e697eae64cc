// Helpers shared by the compute tests: seeded random fills and a
// max-relative-error comparison that reports where two arrays differ most.
#pragma once

#include "compute/model.hpp"

#include <cmath>
#include <cstdint>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace orbitrain::compute::testing {

inline std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v)
    x = float(r.normal()) * scale;
  return v;
}

inline std::vector<int32_t> randint(size_t n, int hi, uint64_t seed) {
  Rng r(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v)
    x = int32_t(r.next_u64() % uint64_t(hi));
  return v;
}

// Passes when |a-b| <= atol + rtol*|b| everywhere.
inline ::testing::AssertionResult all_close(const float* a, const float* b, size_t n, double rtol,
                                            double atol) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const double excess = std::fabs(double(a[i]) - b[i]) - (atol + rtol * std::fabs(double(b[i])));
    if (!(excess <= worst) || std::isnan(a[i])) {
      worst = std::isnan(a[i]) ? INFINITY : excess;
      at = i;
    }
  }
  if (worst <= 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << at << ": " << a[at] << " vs " << b[at]
                                       << " (rtol " << rtol << ", atol " << atol << ")";
}

inline ::testing::AssertionResult all_close(const std::vector<float>& a,
                                            const std::vector<float>& b, double rtol, double atol) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  return all_close(a.data(), b.data(), a.size(), rtol, atol);
}

} // namespace orbitrain::compute::testing
