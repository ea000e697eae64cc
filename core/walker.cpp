// Implementation of walker.hpp.
#include "core/walker.hpp"

#include <cstdio>

namespace orbitrain {

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
  if (!(altitude_m >= 160e3)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", altitude_m / 1e3);
    return make_error(Errc::invalid_argument, std::string("altitude ") + buf +
                                                  " km is below 160 km: the orbit would decay " +
                                                  "within days");
  }
  return Ok{};
}

std::string WalkerDelta::to_string() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%g:%d/%d/%d", inclination_deg, total, planes, phasing);
  return buf;
}

} // namespace orbitrain
