// Implementation of orbit.hpp.
#include "orbit/orbit.hpp"

#include <algorithm>
#include <cstdio>

namespace orbitrain::orbit {

namespace {
constexpr double deg = pi / 180.0;
}

double orbital_period(double altitude_m) {
  const double a = earth_radius + altitude_m;
  return 2 * pi * std::sqrt(a * a * a / earth_mu);
}

Walker::Walker(WalkerDelta pattern, bool j2)
    : p_(pattern), radius_(earth_radius + pattern.altitude_m),
      u_rate_(2 * pi / orbital_period(pattern.altitude_m)), raan_rate_(0),
      cos_inc_(std::cos(pattern.inclination_deg * deg)),
      sin_inc_(std::sin(pattern.inclination_deg * deg)) {
  if (j2) {
    // Secular rates of a circular orbit (Vallado, eqs. 9-41..9-43, e = 0):
    // node -3/2 n J2 (R/a)^2 cos i; perigee + mean anomaly
    // 3/4 n J2 (R/a)^2 (5 cos^2 i - 1 + 3 cos^2 i - 1).
    const double n = u_rate_, k = earth_j2 * std::pow(earth_radius / radius_, 2);
    raan_rate_ = -1.5 * n * k * cos_inc_;
    u_rate_ = n * (1 + 0.75 * k * (8 * cos_inc_ * cos_inc_ - 2));
  }
}

Vec3 Walker::position(int slot, double t) const {
  const int plane = plane_of(slot), k = index_in_plane(slot), n = p_.per_plane();
  const double raan = 2 * pi * plane / p_.planes + raan_rate_ * t;
  // Walker phasing: plane j is shifted by j*f*360/t degrees in argument of latitude.
  const double u0 = 2 * pi * k / n + 2 * pi * p_.phasing * plane / p_.total;
  const double u = u0 + u_rate_ * t;
  // Position in the orbital plane, rotated by inclination then RAAN.
  const double xo = radius_ * std::cos(u), yo = radius_ * std::sin(u);
  const double x1 = xo, y1 = yo * cos_inc_, z1 = yo * sin_inc_;
  const double cr = std::cos(raan), sr = std::sin(raan);
  return {x1 * cr - y1 * sr, x1 * sr + y1 * cr, z1};
}

std::vector<std::pair<int, int>> Walker::grid_links() const {
  std::vector<std::pair<int, int>> links;
  const int n = p_.per_plane();
  auto add = [&](int a, int b) {
    if (a != b)
      links.emplace_back(std::min(a, b), std::max(a, b));
  };
  for (int s = 0; s < p_.total; ++s) {
    const int plane = plane_of(s), k = index_in_plane(s);
    if (n > 2 || (n == 2 && k == 0))
      add(s, plane * n + (k + 1) % n);
    if (p_.planes > 2 || (p_.planes == 2 && plane == 0))
      add(s, ((plane + 1) % p_.planes) * n + k);
  }
  std::sort(links.begin(), links.end());
  links.erase(std::unique(links.begin(), links.end()), links.end());
  return links;
}

bool line_of_sight(const Vec3& a, const Vec3& b, double min_altitude_m) {
  // Closest approach of the segment to the Earth's centre.
  const Vec3 d = b - a;
  const double len2 = d.dot(d);
  double s = len2 > 0 ? -a.dot(d) / len2 : 0;
  s = std::min(1.0, std::max(0.0, s));
  return (a + d * s).norm() >= earth_radius + min_altitude_m;
}

bool in_eclipse(const Vec3& sat, const Vec3& sun) {
  const double along = sat.dot(sun);
  if (along >= 0)
    return false; // on the day side
  const Vec3 perp = sat - sun * along;
  return perp.norm() < earth_radius;
}

Vec3 station_position(double lat_deg, double lon_deg, double t, double gmst0) {
  const double lat = lat_deg * deg, lon = lon_deg * deg + gmst0 + earth_rotation * t;
  return Vec3{std::cos(lat) * std::cos(lon), std::cos(lat) * std::sin(lon), std::sin(lat)} *
         earth_radius;
}

double elevation_deg(const Vec3& sat, double lat_deg, double lon_deg, double t, double gmst0) {
  const Vec3 station = station_position(lat_deg, lon_deg, t, gmst0);
  const Vec3 up = station * (1 / earth_radius);
  const Vec3 to_sat = sat - station;
  return std::asin(to_sat.dot(up) / to_sat.norm()) / deg;
}

Geodetic subpoint(const Vec3& sat, double t, double gmst0) {
  const double r = sat.norm();
  Geodetic g;
  g.lat_deg = std::asin(sat.z / r) / deg;
  double lon = std::atan2(sat.y, sat.x) - gmst0 - earth_rotation * t;
  lon = std::remainder(lon, 2 * pi);
  g.lon_deg = lon / deg;
  g.alt_m = r - earth_radius;
  return g;
}

double gmst(double unix_seconds) {
  // Astronomical Almanac: GMST = 280.46061837 + 360.98564736629 d degrees,
  // d = days since J2000.0.
  const double d = julian_date(unix_seconds) - 2451545.0;
  double a = std::fmod(280.46061837 + 360.98564736629 * d, 360.0);
  if (a < 0)
    a += 360;
  return a * deg;
}

Vec3 sun_direction(double unix_seconds) {
  // Astronomical Almanac, "low precision formulas for the Sun".
  const double n = julian_date(unix_seconds) - 2451545.0;
  const double L = 280.460 + 0.9856474 * n;         // mean longitude, degrees
  const double g = (357.528 + 0.9856003 * n) * deg; // mean anomaly
  const double lambda = (L + 1.915 * std::sin(g) + 0.020 * std::sin(2 * g)) * deg; // ecliptic lon.
  const double eps = (23.439 - 0.0000004 * n) * deg;                               // obliquity
  return {std::cos(lambda), std::cos(eps) * std::sin(lambda), std::sin(eps) * std::sin(lambda)};
}

} // namespace orbitrain::orbit
