// Implementation of policy.hpp.
#include "orbit/policy.hpp"

#include "orbit/model.hpp"

#include <algorithm>
#include <tuple>

namespace orbitrain::orbit {

std::optional<Policy> parse_policy(const std::string& s) {
  if (s == "aware")
    return Policy::aware;
  if (s == "load")
    return Policy::load;
  return std::nullopt;
}

bool energy_allows(const ConstellationModel& model, const PowerModel& power, const WorkerView& w,
                   double now, double duration, int cores) {
  if (!w.has_energy || w.slot < 0)
    return true;
  const double t0 = std::min(w.report_time, now);
  const double span = std::max(0.0, now - t0) + std::max(0.0, duration);
  Battery b(power, w.soc);
  if (b.below_limit())
    return false;
  // The task's span busy, then idle to the end of the eclipse it ends in
  // (at most one orbit on): the charge must stay above the floor throughout.
  const double end = t0 + span;
  const auto ecl = model.eclipses(w.slot, t0, end + 2 * 3600, 10);
  if (b.run(t0, end, cores, ecl) < power.floor_wh())
    return false;
  for (const auto& e : ecl)
    if (e.begin <= end && end < e.end)
      return b.run(end, e.end, 0, ecl) >= power.floor_wh();
  return true;
}

Choice choose_worker(Policy policy, const std::vector<WorkerView>& workers,
                     const ConstellationModel* model, const PowerModel& power, double now,
                     double duration, int cores) {
  Choice c;
  const bool aware = policy == Policy::aware && model;
  std::vector<size_t> live;
  bool any_alive = false;
  for (size_t i = 0; i < workers.size(); ++i) {
    if (!workers[i].alive)
      continue;
    any_alive = true;
    const double d = workers[i].task_s > 0 ? workers[i].task_s : duration;
    if (aware && (!energy_allows(*model, power, workers[i], now, d, cores) ||
                  !(workers[i].ps_latency < infinity)))
      continue;
    live.push_back(i);
  }
  if (live.empty()) {
    c.energy_blocked = any_alive;
    return c;
  }
  double least = workers[live[0]].load;
  for (size_t i : live)
    least = std::min(least, workers[i].load);
  // Among the least loaded: the load policy takes the first data holder
  // (else the first); the aware one ranks sunlight, latency, data.
  std::optional<size_t> best;
  for (size_t i : live) {
    if (workers[i].load > least)
      continue;
    if (!best) {
      best = i;
      continue;
    }
    const auto& a = workers[i];
    const auto& b = workers[*best];
    if (aware) {
      if (std::make_tuple(!a.sunlit, a.ps_latency, !a.holds_data) <
          std::make_tuple(!b.sunlit, b.ps_latency, !b.holds_data))
        best = i;
    } else if (a.holds_data && !b.holds_data) {
      best = i;
    }
  }
  c.worker = best;
  return c;
}

} // namespace orbitrain::orbit
