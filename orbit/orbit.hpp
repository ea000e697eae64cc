// The constellation's geometry, plain C++ (no CAF): circular orbits of a
// Walker-delta pattern propagated in time, the +Grid inter-satellite links
// with line of sight above the atmosphere and their light-time latency,
// eclipse in a cylindrical Earth shadow, and the elevation of a satellite
// seen from a ground station on the rotating Earth. Frames: Earth-centred
// inertial (ECI), metres and seconds; t = 0 is the constellation's epoch, at
// which the Greenwich meridian lies on the ECI x axis.
#pragma once

#include "core/result.hpp"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace orbitrain::orbit {

inline constexpr double pi = 3.14159265358979323846;
inline constexpr double earth_mu = 3.986004418e14;     // m^3/s^2
inline constexpr double earth_radius = 6378.137e3;     // m, equatorial (WGS-84)
inline constexpr double earth_rotation = 7.2921159e-5; // rad/s
inline constexpr double speed_of_light = 299792458.0;  // m/s

struct Vec3 {
  double x = 0, y = 0, z = 0;
  Vec3 operator+(const Vec3& o) const { return {x + o.x, y + o.y, z + o.z}; }
  Vec3 operator-(const Vec3& o) const { return {x - o.x, y - o.y, z - o.z}; }
  Vec3 operator*(double s) const { return {x * s, y * s, z * s}; }
  double dot(const Vec3& o) const { return x * o.x + y * o.y + z * o.z; }
  double norm() const { return std::sqrt(dot(*this)); }
};

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
};

/// Period of a circular orbit at `altitude_m`, seconds.
double orbital_period(double altitude_m);

class Walker {
public:
  explicit Walker(WalkerDelta pattern);
  const WalkerDelta& pattern() const { return p_; }
  int size() const { return p_.total; }
  int plane_of(int slot) const { return slot / p_.per_plane(); }
  int index_in_plane(int slot) const { return slot % p_.per_plane(); }
  double period() const { return period_; }

  /// ECI position of `slot` at time `t` (seconds since the epoch).
  Vec3 position(int slot, double t) const;

  /// +Grid: each satellite's two neighbours in its plane and the satellites
  /// of the same index in the two adjacent planes; each link once (a < b).
  std::vector<std::pair<int, int>> grid_links() const;

  /// Light-time latency of a straight link, seconds.
  static double latency(const Vec3& a, const Vec3& b) { return (a - b).norm() / speed_of_light; }

private:
  WalkerDelta p_;
  double radius_;
  double period_;
};

/// Whether the segment a-b stays above `min_altitude_m` everywhere.
bool line_of_sight(const Vec3& a, const Vec3& b, double min_altitude_m = 80e3);

/// Whether `sat` is in the Earth's cylindrical shadow; `sun` is the unit
/// vector from the Earth towards the Sun.
bool in_eclipse(const Vec3& sat, const Vec3& sun);

/// Elevation (degrees) of `sat` seen from a ground station at `lat_deg`,
/// `lon_deg` at time `t`.
double elevation_deg(const Vec3& sat, double lat_deg, double lon_deg, double t);

} // namespace orbitrain::orbit
