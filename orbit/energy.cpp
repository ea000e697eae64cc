// Implementation of energy.hpp.
#include "orbit/energy.hpp"

#include <algorithm>

namespace orbitrain::orbit {

PowerModel power_model(const orbitrain::EnergySettings& e) {
  return PowerModel{e.solar_w, e.battery_wh, e.depth_of_discharge, e.idle_w, e.per_core_w};
}

Battery::Battery(PowerModel model, double soc)
    : m_(model), wh_(std::clamp(soc, 0.0, 1.0) * model.battery_wh) {}

double Battery::charge(double dt, bool sunlit, int cores) {
  if (dt > 0)
    wh_ = std::clamp(wh_ + m_.net_w(sunlit, cores) * dt / 3600, 0.0, m_.battery_wh);
  return wh_;
}

double Battery::run(double t0, double t1, int cores, const std::vector<Window>& eclipses) {
  double lowest = wh_;
  double t = t0;
  for (const auto& e : eclipses) {
    if (e.end <= t)
      continue;
    if (e.begin >= t1)
      break;
    if (e.begin > t)
      lowest = std::min(lowest, charge(e.begin - t, true, cores));
    const double end = std::min(e.end, t1);
    lowest = std::min(lowest, charge(end - std::max(t, e.begin), false, cores));
    t = end;
  }
  if (t < t1)
    lowest = std::min(lowest, charge(t1 - t, true, cores));
  return lowest;
}

bool would_breach(const Battery& b, double t, double duration, int cores,
                  const std::vector<Window>& eclipses) {
  Battery trial = b;
  return trial.run(t, t + duration, cores, eclipses) < b.model().floor_wh();
}

} // namespace orbitrain::orbit
