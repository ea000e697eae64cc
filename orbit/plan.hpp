// A constellation's plan over a span of simulated time, computed from its file
// alone (no running satellite): per satellite its orbital period, eclipses,
// state of charge when idle and how often it has a route to the parameter
// server; per ground station the contact windows of every satellite of the
// file; per inter-satellite link how often it is up and its latency. The
// `orbitrain plan` command prints it as a table, JSON or an SVG timeline.
// Plain C++, no CAF.
#pragma once

#include "core/config.hpp"
#include "orbit/energy.hpp"
#include "orbit/model.hpp"

#include <string>
#include <vector>

namespace orbitrain::orbit {

struct PlanOptions {
  double hours = 3;
  double window_step_s = 10; // sampling of contact and eclipse search (edges bisected to 1 ms)
  double sample_step_s = 60; // sampling of links, routes and state of charge
};

/// min / mean / max of a series (all zero when it is empty).
struct Spread {
  double min = 0, mean = 0, max = 0;
  int count = 0;
  void add(double v);
  void finish();

private:
  double sum_ = 0;
};

struct SatellitePlan {
  std::string id;
  int slot = 0;
  double period_s = 0;
  std::vector<Window> eclipses;
  double sunlit_fraction = 0;
  std::vector<double> soc; // idle state of charge at t = k x sample_step_s, k = 0..
  double soc_min = 0;
  bool below_limit = false;     // the idle state of charge falls below the DoD limit
  double ps_route_fraction = 0; // of the samples with a route to the parameter server
  Spread ps_latency_s;          // over the samples with a route
};

struct ContactPlan {
  std::string satellite;
  int slot = 0;
  Window window;
};

struct StationPlan {
  GroundStation station;
  std::vector<ContactPlan> contacts; // sorted by start
};

struct LinkPlan {
  int a = 0, b = 0;       // slots
  std::string a_id, b_id; // satellites of the file in those slots ("" for relay-only slots)
  double up_fraction = 0;
  Spread latency_s; // over the samples where the link is up
};

struct Plan {
  std::string name;
  ModelSpec spec;
  double time_scale = 1;
  PlanOptions options;
  double span_s = 0;
  double period_s = 0;
  PowerModel power;
  std::vector<SatellitePlan> satellites; // in file order
  std::vector<StationPlan> stations;
  std::vector<LinkPlan> links;
};

/// The plan of `file` (which must have [orbit]; throws std::invalid_argument
/// otherwise) over [0, hours] of simulated time.
Plan make_plan(const orbitrain::Constellation& file, const PlanOptions& options);

} // namespace orbitrain::orbit
