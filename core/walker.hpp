// The Walker-delta pattern of a constellation (i:t/p/f at one altitude): the
// value type the constellation file holds and orbit/ propagates. It lives in
// core/ so that the file's loader can validate a pattern (and report the
// problem at its line) without depending on the orbit model; orbit/orbit.hpp
// re-exports it as orbit::WalkerDelta.
#pragma once

#include "core/result.hpp"

#include <string>

namespace orbitrain {

/// A Walker-delta pattern i:t/p/f at one altitude.
struct WalkerDelta {
  double inclination_deg = 53;
  int total = 24;  // satellites
  int planes = 4;  // orbital planes, evenly spaced in right ascension
  int phasing = 1; // f: relative phase between adjacent planes, 0..planes-1
  double altitude_m = 550e3;

  /// Parses "53:24/4/1"; errors name what is wrong.
  static Result<WalkerDelta> parse(const std::string& text, double altitude_m);
  /// Errors for an impossible pattern (phasing out of range, planes not
  /// dividing the total, altitude below 160 km, ...); Ok otherwise.
  Status validate() const;
  int per_plane() const { return total / planes; }
  /// "53:24/4/1".
  std::string to_string() const;
};

} // namespace orbitrain
