// The scheduler's choice of a worker for a task, as a plain function so it
// is tested without actors (tests/policy_test.cpp). Two policies:
//
//   load   the least loaded live worker (outstanding tasks x task time),
//          among equally loaded ones preferring one that holds the task's
//          data: what the scheduler did before the orbit model.
//   aware  the same, restricted to workers whose battery stays above the
//          depth-of-discharge limit for the task (energy rule, below) and
//          that have a route to the parameter server now (contact rule: a
//          result could not leave otherwise), and among the least loaded
//          preferring, in this order, sunlight, a short latency to the
//          parameter server, then the data.
//
// Energy rule: a worker's satellite reported its state of charge at
// simulated time t_r; the task would run for `duration` from now. The
// worker is eligible when running `cores` from t_r until now + duration
// (pessimistically busy since the report), and then idling to the end of
// the eclipse the task ends in, never takes the battery below capacity x
// (1 - depth of discharge), with the slot's eclipses from the model's
// analytic orbits (a task that leaves too little charge for the rest of the
// night is refused, not only one that empties the battery itself). A worker
// with no energy report (no orbit model) is always eligible.
#pragma once

#include "orbit/energy.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace orbitrain::orbit {

class ConstellationModel;

enum class Policy { load, aware };

/// "aware" or "load"; nullopt otherwise.
std::optional<Policy> parse_policy(const std::string& s);

/// What the scheduler knows of one worker.
struct WorkerView {
  bool alive = false;
  double load = 0;         // expected ms to finish what it holds
  bool holds_data = false; // its satellite holds the task's first chunk
  bool has_energy = false; // the fields below come from an orbit model
  int slot = -1;           // its Walker slot
  double soc = 1;          // state of charge at report_time
  double report_time = 0;  // simulated seconds since the epoch
  bool sunlit = true;
  double ps_latency = 0; // light time to the parameter server's slot, s (infinity: no route)
  double task_s =
      0; // simulated work a new task would end here, the held tasks included (0: the call's)
};

/// The energy rule above. `now` and `duration` are simulated seconds.
bool energy_allows(const ConstellationModel& model, const PowerModel& power, const WorkerView& w,
                   double now, double duration, int cores);

struct Choice {
  std::optional<size_t> worker; // index into the views
  bool energy_blocked = false;  // live workers exist, but none may take the task now
                                // (energy or no route to the parameter server)
};

/// The worker for a task under `policy`. `model` may be null (no orbit
/// model): then both policies choose by load and data only.
Choice choose_worker(Policy policy, const std::vector<WorkerView>& workers,
                     const ConstellationModel* model, const PowerModel& power, double now,
                     double duration, int cores);

} // namespace orbitrain::orbit
