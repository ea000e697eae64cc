// Constants and closed forms the orbit tests check the library against,
// written independently of orbit/ (only WalkerDelta, the input type, is
// shared).
#pragma once

#include "core/walker.hpp"

#include <cmath>

namespace orbitrain::testing::closed_form {

inline constexpr double MU = 3.986004418e14, RE = 6378.137e3, C = 299792458.0,
                        PI = 3.14159265358979;

/// Period of a circular orbit at altitude h (m), seconds.
inline double closed_period(double h) {
  return 2 * PI * std::sqrt(std::pow(RE + h, 3) / MU);
}

/// The Walker pattern inc:t/p/f at altitude h (m).
inline orbitrain::WalkerDelta pattern(double inc, int t, int p, int f, double h) {
  orbitrain::WalkerDelta w;
  w.inclination_deg = inc;
  w.total = t;
  w.planes = p;
  w.phasing = f;
  w.altitude_m = h;
  return w;
}

} // namespace orbitrain::testing::closed_form
