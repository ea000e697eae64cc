// The worker's side of the energy rule (aware policy), as plain functions so
// it is tested without actors (tests/policy_test.cpp).
//
// The scheduler plans with load reports that are a moment old and with task
// times it only estimates, so its energy rule (orbit/policy.hpp) cannot
// promise anything by itself. The worker can: it reads its own satellite's
// charge from the node's orbit service, and it times its own tasks. Before
// its compute thread starts a task (a task it queued earlier is checked when
// its turn comes, not when it arrived), it asks may_start() with a
// pessimistic duration, guarded_duration(): `energy_margin` times the
// longest of its recent tasks' busy spans (the time a task keeps the compute
// thread, and so the battery, busy, waits for parameters included), or the
// scheduler's plan for the task when that is longer (before the worker's
// first task it is all there is). A task it may not start is declined: the
// scheduler gives it to another worker.
//
// The rule is energy_allows(): from the sample on, `cores` busy until the
// task ends (busy since the sample, pessimistically), then idle to the end of
// the eclipse the task ends in; the charge must stay above capacity x (1 -
// depth of discharge) throughout.
#pragma once

#include "orbit/energy.hpp"

#include <cstddef>
#include <deque>

namespace orbitrain::orbit {

class ConstellationModel;

/// The scheduler and the worker plan a task for this many times the longest
/// it has recently taken.
inline constexpr double energy_margin = 2;

/// How long a worker's recent tasks kept its compute thread busy.
class BusySpans {
public:
  explicit BusySpans(size_t keep = 8) : keep_(keep) {}
  /// One task's span, wall seconds.
  void add(double seconds);
  /// The longest of the last `keep` spans; 0 before the first.
  double recent_max() const;
  size_t size() const { return spans_.size(); }

private:
  size_t keep_;
  std::deque<double> spans_;
};

/// The simulated seconds a worker plans a task for: `margin` x its longest
/// recent busy span (wall seconds x `time_scale`), or the scheduler's plan
/// `planned_s` (simulated seconds, 0: none) when that is longer.
double guarded_duration(const BusySpans& spans, double time_scale, double planned_s,
                        double margin = energy_margin);

/// May the worker on `slot` start a task that keeps `cores` busy for
/// `duration` simulated seconds from `now`, its battery holding `soc` at
/// simulated time `sampled_at` (<= now)? The energy rule above.
bool may_start(const ConstellationModel& model, const PowerModel& power, int slot, double soc,
               double sampled_at, double now, double duration, int cores);

} // namespace orbitrain::orbit
