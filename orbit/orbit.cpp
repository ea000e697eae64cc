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

Result<WalkerDelta> WalkerDelta::parse(const std::string& text, double altitude_m) {
  WalkerDelta w;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%lf:%d/%d/%d%c", &w.inclination_deg, &w.total, &w.planes,
                  &w.phasing, &tail) != 4)
    return make_error(Errc::invalid_argument,
                      "'" + text + "' is not a Walker pattern i:t/p/f (e.g. \"53:24/4/1\")");
  w.altitude_m = altitude_m;
  if (auto st = w.validate(); !st)
    return st.error();
  return w;
}

Status WalkerDelta::validate() const {
  if (!(inclination_deg >= 0 && inclination_deg <= 180))
    return make_error(Errc::invalid_argument, "inclination must be 0..180 degrees");
  if (total < 1 || planes < 1 || total % planes != 0)
    return make_error(Errc::invalid_argument, "the number of planes (" + std::to_string(planes) +
                                                  ") must divide the number of satellites (" +
                                                  std::to_string(total) + ")");
  if (phasing < 0 || phasing >= planes)
    return make_error(Errc::invalid_argument, "phasing " + std::to_string(phasing) +
                                                  " is out of range 0.." +
                                                  std::to_string(planes - 1));
  if (!(altitude_m >= 160e3))
    return make_error(Errc::invalid_argument,
                      "altitude " + std::to_string(altitude_m / 1e3) +
                          " km is below 160 km: the orbit would decay within days");
  return Ok{};
}

Walker::Walker(WalkerDelta pattern)
    : p_(pattern), radius_(earth_radius + pattern.altitude_m),
      period_(orbital_period(pattern.altitude_m)) {}

Vec3 Walker::position(int slot, double t) const {
  const int plane = plane_of(slot), k = index_in_plane(slot), n = p_.per_plane();
  const double raan = 2 * pi * plane / p_.planes;
  // Walker phasing: plane j is shifted by j*f*360/t degrees in argument of latitude.
  const double u0 = 2 * pi * k / n + 2 * pi * p_.phasing * plane / p_.total;
  const double u = u0 + 2 * pi * t / period_;
  const double inc = p_.inclination_deg * deg;
  // Position in the orbital plane, rotated by inclination then RAAN.
  const double xo = radius_ * std::cos(u), yo = radius_ * std::sin(u);
  const double x1 = xo, y1 = yo * std::cos(inc), z1 = yo * std::sin(inc);
  return {x1 * std::cos(raan) - y1 * std::sin(raan), x1 * std::sin(raan) + y1 * std::cos(raan), z1};
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

double elevation_deg(const Vec3& sat, double lat_deg, double lon_deg, double t) {
  const double lat = lat_deg * deg, lon = lon_deg * deg + earth_rotation * t;
  const Vec3 up{std::cos(lat) * std::cos(lon), std::cos(lat) * std::sin(lon), std::sin(lat)};
  const Vec3 station = up * earth_radius;
  const Vec3 to_sat = sat - station;
  return std::asin(to_sat.dot(up) / to_sat.norm()) / deg;
}

} // namespace orbitrain::orbit
