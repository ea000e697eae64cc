// The scheduler's choice of a worker (orbit/policy.hpp), without actors: the
// energy rule against a battery budget worked out by hand in eclipse, the
// aware policy's preferences, and the load policy's indifference to energy.
// The worker's own guard (orbit/guard.hpp): its pessimistic duration, and
// its decision with its exact charge, budgets worked out by hand too.
#include "orbit/guard.hpp"
#include "orbit/model.hpp"
#include "orbit/policy.hpp"

#include <gtest/gtest.h>

using namespace orbitrain;
using namespace orbitrain::orbit;

namespace {

// Ten satellites on one equatorial orbit at 550 km, at an equinox.
ConstellationModel ring() {
  ModelSpec spec;
  spec.walker = WalkerDelta::parse("0:10/1/0", 550e3).value();
  spec.epoch_unix = parse_utc_time("2026-03-20T14:46:00Z").value();
  return ConstellationModel(spec);
}

WorkerView view(int slot, double soc, double t, bool sunlit) {
  WorkerView w;
  w.alive = true;
  w.has_energy = true;
  w.slot = slot;
  w.soc = soc;
  w.report_time = t;
  w.sunlit = sunlit;
  return w;
}

} // namespace

TEST(SchedulerPolicy, EnergyRuleInEclipse) {
  auto m = ring();
  auto ecl = m.eclipses(0, 0, 6000);
  ASSERT_FALSE(ecl.empty());
  const double t = ecl[0].begin + 200; // 200 s into slot 0's first eclipse
  ASSERT_GT(ecl[0].end - t, 1000);     // ~35 min of shadow at 550 km
  m.update(t);
  ASSERT_FALSE(m.sunlit(0));
  PowerModel p; // 80 Wh, floor 60% = 48 Wh; no idle draw, 10 W per core
  p.idle_w = 0;
  // 49.6 Wh: 1.6 Wh = 5760 J above the floor; one busy core draws 10 W in
  // shadow, so 576 s of work.
  const auto w = view(0, 0.62, t, false);
  EXPECT_TRUE(energy_allows(m, p, w, t, 550, 1));
  EXPECT_FALSE(energy_allows(m, p, w, t, 600, 1));
  // Two cores (20 W): 288 s.
  EXPECT_TRUE(energy_allows(m, p, w, t, 270, 2));
  EXPECT_FALSE(energy_allows(m, p, w, t, 300, 2));
  // The report is 100 s old: the worker counts as busy since then.
  const auto old = view(0, 0.62, t - 100, false);
  EXPECT_TRUE(energy_allows(m, p, old, t, 450, 1));
  EXPECT_FALSE(energy_allows(m, p, old, t, 500, 1));
  // With 1 W idle the rest of the night counts too: a task of d s leaves
  // 5760 J - 11 W d - 1 W (R - d) for R seconds of shadow left, so
  // d <= (5760 - R) / 10 instead of 5760 / 11.
  p.idle_w = 1;
  const double R = ecl[0].end - t;
  const double d_max = (5760 - R) / 10;
  ASSERT_GT(d_max, 100);
  EXPECT_TRUE(energy_allows(m, p, w, t, d_max - 20, 1));
  EXPECT_FALSE(energy_allows(m, p, w, t, d_max + 20, 1));
  EXPECT_LT(d_max + 20, 5760 / 11.0); // the tail, not the task alone, decides
  // Below the floor already: nothing, however short.
  EXPECT_FALSE(energy_allows(m, p, view(0, 0.59, t, false), t, 1, 1));
  // No orbit model behind the report: always allowed.
  WorkerView plain;
  plain.alive = true;
  EXPECT_TRUE(energy_allows(m, p, plain, t, 1e6, 8));
}

TEST(SchedulerPolicy, AwareSkipsBreachAndPrefersSunAndNearness) {
  auto m = ring();
  auto ecl = m.eclipses(0, 0, 6000);
  const double t = ecl[0].begin + 1;
  m.update(t);
  PowerModel p;
  std::vector<WorkerView> ws = {view(0, 0.62, t, false), view(5, 1.0, t, true),
                                view(6, 1.0, t, true)};
  ws[1].ps_latency = 0.020;
  ws[2].ps_latency = 0.010;
  ws[0].holds_data = true;
  // Load only: equal loads, the data holder wins, energy is not looked at.
  auto c = choose_worker(Policy::load, ws, &m, p, t, 600, 1);
  ASSERT_TRUE(c.worker);
  EXPECT_EQ(*c.worker, 0u);
  // Aware: worker 0 would breach; of the sunlit two the nearer to the PS.
  c = choose_worker(Policy::aware, ws, &m, p, t, 600, 1);
  ASSERT_TRUE(c.worker);
  EXPECT_EQ(*c.worker, 2u);
  // Load still comes first: a busier sunlit worker loses to an idle one.
  ws[2].load = 100;
  c = choose_worker(Policy::aware, ws, &m, p, t, 600, 1);
  EXPECT_EQ(*c.worker, 1u);
  // No route to the parameter server: not eligible for the aware policy.
  ws[1].ps_latency = infinity;
  c = choose_worker(Policy::aware, ws, &m, p, t, 600, 1);
  EXPECT_EQ(*c.worker, 2u);
  ws[1].ps_latency = 0.020;
  // Sunlight before nearness.
  ws[2].load = 0;
  ws[2].sunlit = false;
  c = choose_worker(Policy::aware, ws, &m, p, t, 600, 1);
  EXPECT_EQ(*c.worker, 1u);
  // Only the breaching worker alive: blocked, not "no worker".
  ws[1].alive = ws[2].alive = false;
  c = choose_worker(Policy::aware, ws, &m, p, t, 600, 1);
  EXPECT_FALSE(c.worker);
  EXPECT_TRUE(c.energy_blocked);
  ws[0].alive = false;
  c = choose_worker(Policy::aware, ws, &m, p, t, 600, 1);
  EXPECT_FALSE(c.worker);
  EXPECT_FALSE(c.energy_blocked);
  // Without a model both policies choose by load and data only.
  ws[0].alive = true;
  c = choose_worker(Policy::aware, ws, nullptr, p, t, 600, 1);
  EXPECT_EQ(*c.worker, 0u);
}

TEST(WorkerGuard, PlansForTheLongestRecentTaskTimesTheMargin) {
  BusySpans spans(8);
  EXPECT_EQ(spans.recent_max(), 0);
  // Before its first task the worker has only the scheduler's plan.
  EXPECT_EQ(guarded_duration(spans, 60, 90), 90);
  spans.add(5);
  for (int i = 0; i < 7; ++i)
    spans.add(1);
  EXPECT_EQ(spans.recent_max(), 5); // eight spans kept, the 5 s one among them
  EXPECT_EQ(guarded_duration(spans, 60, 90), energy_margin * 5 * 60);
  spans.add(1.5); // the 5 s span is now nine tasks old: forgotten
  EXPECT_EQ(spans.size(), 8u);
  EXPECT_EQ(spans.recent_max(), 1.5);
  // Wall seconds x time scale x margin, unless the scheduler planned longer.
  EXPECT_EQ(guarded_duration(spans, 60, 90), 2 * 1.5 * 60);
  EXPECT_EQ(guarded_duration(spans, 60, 400), 400);
  EXPECT_EQ(guarded_duration(spans, 60, 0, 3), 3 * 1.5 * 60);
}

TEST(WorkerGuard, DecidesWithItsOwnChargeWhenTheTaskStarts) {
  auto m = ring();
  auto ecl = m.eclipses(0, 0, 6000);
  ASSERT_FALSE(ecl.empty());
  const double t = ecl[0].begin + 200;
  ASSERT_GT(ecl[0].end - t, 1000);
  PowerModel p; // 80 Wh, floor 48 Wh, 10 W per core
  p.idle_w = 0;
  // 49.6 Wh: 5760 J above the floor, 576 s of one busy core in shadow.
  EXPECT_TRUE(may_start(m, p, 0, 0.62, t, t, 550, 1));
  EXPECT_FALSE(may_start(m, p, 0, 0.62, t, t, 600, 1));
  // A sample 100 s old: busy since then, for all the worker knows.
  EXPECT_TRUE(may_start(m, p, 0, 0.62, t - 100, t, 450, 1));
  EXPECT_FALSE(may_start(m, p, 0, 0.62, t - 100, t, 500, 1));
  // A task queued behind a 300 s one is judged when its turn comes, on the
  // charge left then: 49.6 - 300 x 10 / 3600 = 48.767 Wh, 2760 J, 276 s.
  // At arrival 300 s would have fitted.
  const double soc_then = (49.6 - 300 * 10 / 3600.0) / 80;
  EXPECT_TRUE(may_start(m, p, 0, 0.62, t, t, 300, 1));
  EXPECT_TRUE(may_start(m, p, 0, soc_then, t + 300, t + 300, 250, 1));
  EXPECT_FALSE(may_start(m, p, 0, soc_then, t + 300, t + 300, 300, 1));
  // Below the floor: nothing.
  EXPECT_FALSE(may_start(m, p, 0, 0.59, t, t, 1, 1));
}

TEST(WorkerGuard, ATaskEndingInEclipseMustLeaveEnoughForTheRestOfIt) {
  auto m = ring();
  auto ecl = m.eclipses(0, 0, 6000);
  ASSERT_FALSE(ecl.empty());
  const double t = ecl[0].begin - 100; // sunlit, 100 s before the shadow
  const double L = ecl[0].end - ecl[0].begin;
  ASSERT_GT(L, 1000);
  PowerModel p;
  p.solar_w = 11; // one busy core in sunlight: 11 - 1 - 10 = 0 W net
  p.idle_w = 1;
  p.per_core_w = 10;
  // X Wh above the floor. A task of 100 + k s: 100 s at 0 W, k s of shadow
  // at -11 W, then L - k s idle at -1 W: 3600 X >= 10 k + L. With 3600 X =
  // L + 3000, k <= 300: tasks up to 400 s.
  const double X = (L + 3000) / 3600;
  const double soc = (p.floor_wh() + X) / p.battery_wh;
  EXPECT_TRUE(may_start(m, p, 0, soc, t, t, 380, 1));
  EXPECT_FALSE(may_start(m, p, 0, soc, t, t, 420, 1));
  // The task alone would fit up to 100 + 3600 X / 11 s: the night decides.
  EXPECT_GT(100 + 3600 * X / 11, 420);
  // At the floor exactly, a task that ends in sunlight (no net draw) may
  // run; a hair below the floor, none may.
  EXPECT_TRUE(may_start(m, p, 0, p.floor_wh() / p.battery_wh, t, t, 50, 1));
  EXPECT_FALSE(may_start(m, p, 0, p.floor_wh() / p.battery_wh - 1e-6, t, t, 50, 1));
}
