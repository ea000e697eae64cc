// The constellation's geometry, plain C++ (no CAF): circular orbits of a
// Walker-delta pattern propagated in time, the +Grid inter-satellite links
// with line of sight above the atmosphere and their light-time latency,
// eclipse in a cylindrical Earth shadow, and the elevation of a satellite
// seen from a ground station on the rotating Earth; the Sun's direction and
// the Earth's rotation angle at a UTC time (low-precision almanac formulas).
// Frames: Earth-centred inertial (ECI, x towards the vernal equinox, z the
// pole), metres and seconds; t is seconds since the constellation's epoch.
// Functions that place the Earth take `gmst0`, the Greenwich sidereal angle at
// the epoch (0: the Greenwich meridian lies on the x axis at t = 0). Plane 0
// of a Walker pattern has its ascending node on the x axis.
#pragma once

#include "core/result.hpp"
#include "core/walker.hpp"

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
inline constexpr double earth_j2 = 1.08262668e-3;      // second zonal harmonic

struct Vec3 {
  double x = 0, y = 0, z = 0;
  Vec3 operator+(const Vec3& o) const { return {x + o.x, y + o.y, z + o.z}; }
  Vec3 operator-(const Vec3& o) const { return {x - o.x, y - o.y, z - o.z}; }
  Vec3 operator*(double s) const { return {x * s, y * s, z * s}; }
  double dot(const Vec3& o) const { return x * o.x + y * o.y + z * o.z; }
  double norm() const { return std::sqrt(dot(*this)); }
};

using orbitrain::WalkerDelta;

/// Period of a circular orbit at `altitude_m`, seconds.
double orbital_period(double altitude_m);

/// Latitude, longitude (degrees, spherical Earth) and altitude (m) under a
/// satellite.
struct Geodetic {
  double lat_deg = 0, lon_deg = 0, alt_m = 0;
};

/// Circular orbits of a Walker-delta pattern. Slot s is satellite
/// s % per_plane of plane s / per_plane. With `j2`, the node regresses and
/// the argument of latitude advances at their secular J2 rates.
class Walker {
public:
  explicit Walker(WalkerDelta pattern, bool j2 = false);
  const WalkerDelta& pattern() const { return p_; }
  int size() const { return p_.total; }
  int plane_of(int slot) const { return slot / p_.per_plane(); }
  int index_in_plane(int slot) const { return slot % p_.per_plane(); }
  /// Time between two ascending-node crossings, seconds (the Keplerian
  /// period without J2).
  double period() const { return 2 * pi / u_rate_; }
  double radius() const { return radius_; }

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
  double u_rate_;    // rad/s, argument of latitude
  double raan_rate_; // rad/s, 0 without J2
  double cos_inc_, sin_inc_;
};

/// Whether the segment a-b stays above `min_altitude_m` everywhere.
bool line_of_sight(const Vec3& a, const Vec3& b, double min_altitude_m = 80e3);

/// Whether `sat` is in the Earth's cylindrical shadow; `sun` is the unit
/// vector from the Earth towards the Sun.
bool in_eclipse(const Vec3& sat, const Vec3& sun);

/// ECI position of a ground station at `lat_deg`, `lon_deg` at time `t`.
Vec3 station_position(double lat_deg, double lon_deg, double t, double gmst0 = 0);

/// Elevation (degrees) of `sat` seen from a ground station at `lat_deg`,
/// `lon_deg` at time `t`.
double elevation_deg(const Vec3& sat, double lat_deg, double lon_deg, double t, double gmst0 = 0);

/// The point under `sat` at time `t`.
Geodetic subpoint(const Vec3& sat, double t, double gmst0 = 0);

/// Julian date of a UTC time given as seconds since 1970.
inline double julian_date(double unix_seconds) {
  return unix_seconds / 86400.0 + 2440587.5;
}

/// Greenwich mean sidereal angle (radians, 0..2pi) at a UTC time.
double gmst(double unix_seconds);

/// Unit vector from the Earth towards the Sun (ECI) at a UTC time: the
/// Astronomical Almanac's low-precision formula (about 0.01 degree, 1950-2050).
Vec3 sun_direction(double unix_seconds);

} // namespace orbitrain::orbit
