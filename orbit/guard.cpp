// Implementation of guard.hpp.
#include "orbit/guard.hpp"

#include "orbit/policy.hpp"

#include <algorithm>

namespace orbitrain::orbit {

void BusySpans::add(double seconds) {
  spans_.push_back(std::max(0.0, seconds));
  while (spans_.size() > std::max<size_t>(1, keep_))
    spans_.pop_front();
}

double BusySpans::recent_max() const {
  return spans_.empty() ? 0 : *std::max_element(spans_.begin(), spans_.end());
}

double guarded_duration(const BusySpans& spans, double time_scale, double planned_s,
                        double margin) {
  return std::max(margin * spans.recent_max() * time_scale, planned_s);
}

bool may_start(const ConstellationModel& model, const PowerModel& power, int slot, double soc,
               double sampled_at, double now, double duration, int cores) {
  WorkerView self;
  self.alive = true;
  self.has_energy = true;
  self.slot = slot;
  self.soc = soc;
  self.report_time = sampled_at;
  return energy_allows(model, power, self, now, duration, cores);
}

} // namespace orbitrain::orbit
