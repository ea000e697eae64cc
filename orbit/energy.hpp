// The power model of one satellite: solar panels that deliver a constant
// power in sunlight and nothing in the Earth's shadow, a battery of fixed
// capacity with a depth-of-discharge limit, and a draw of idle power plus a
// power per busy core. Plain C++, no CAF.
//
// The state of charge is integrated exactly over pieces of constant power
// (sunlit or not, a number of busy cores): the charge moves linearly and is
// clamped to [0, capacity], so the lowest charge of a run is reached at the
// end of a piece. The runtime keeps a Battery per satellite, calls
// charge(dt, sunlit, cores) as time passes, and asks would_breach() before it
// gives a satellite work:
//
//   auto ecl = model.eclipses(slot, now, now + d);
//   if (!would_breach(battery, now, d, cores, ecl)) assign();
#pragma once

#include "core/config.hpp"
#include "orbit/windows.hpp"

#include <vector>

namespace orbitrain::orbit {

struct PowerModel {
  double solar_w = 120;
  double battery_wh = 80;
  double depth_of_discharge = 0.4; // usable fraction of the capacity
  double idle_w = 20;
  double per_core_w = 10;

  /// The lowest charge allowed: capacity x (1 - depth of discharge), Wh.
  double floor_wh() const { return battery_wh * (1 - depth_of_discharge); }
  /// Net power into the battery, W (negative: discharging).
  double net_w(bool sunlit, int cores) const {
    return (sunlit ? solar_w : 0) - idle_w - per_core_w * cores;
  }
};

/// The power model of a constellation file's [energy] section.
PowerModel power_model(const orbitrain::EnergySettings& e);

class Battery {
public:
  /// `soc`: state of charge as a fraction of the capacity.
  Battery(PowerModel model, double soc);

  const PowerModel& model() const { return m_; }
  double charge_wh() const { return wh_; }
  double soc() const { return wh_ / m_.battery_wh; }
  /// Whether the charge is below the depth-of-discharge limit.
  bool below_limit() const { return wh_ < m_.floor_wh(); }

  /// Integrates `dt` seconds of constant conditions; returns the lowest
  /// charge reached (Wh), which is the charge at the end.
  double charge(double dt, bool sunlit, int cores);

  /// Integrates over [t0, t1] with `cores` busy and the Earth's shadow given
  /// by `eclipses` (sorted, as ConstellationModel::eclipses returns them);
  /// returns the lowest charge reached (Wh).
  double run(double t0, double t1, int cores, const std::vector<Window>& eclipses);

private:
  PowerModel m_;
  double wh_;
};

/// Would running `cores` for `duration` seconds from `t` take the battery
/// below its depth-of-discharge limit at any moment? `eclipses` must cover
/// [t, t + duration]. Does not change `b`.
bool would_breach(const Battery& b, double t, double duration, int cores,
                  const std::vector<Window>& eclipses);

} // namespace orbitrain::orbit
