// Constellation-model benchmark (issue 6) on the first Starlink shell as
// Hypatia models it: 72 planes x 22 satellites, 53 degrees, 550 km (1,584
// satellites, 3,168 +Grid links), four ground stations, the parameter server
// and the scheduler on two of the satellites.
//
//   update          ConstellationModel::update(t): positions, sunlight, every
//                   ISL (line of sight, range, latency), ground contacts, and
//                   the shortest-path trees the runtime needs (to the
//                   parameter server, the scheduler and from each station)
//   update_routes   update(t) plus reading out every satellite's route (hop
//                   path) to the parameter server, the scheduler and from
//                   each ground station: what the runtime asks for per step
//   geometry_only   update(t) without targets or stations (no Dijkstra)
//   all_pairs       all_pairs_latency(): one Dijkstra per satellite
//
// Each iteration advances simulated time by one second. Run on one core:
//
//   taskset -c 1 build/bin/orbit_bench --benchmark_repetitions=7
//     --benchmark_report_aggregates_only=true --benchmark_format=json
#include "orbit/model.hpp"

#include <algorithm>
#include <benchmark/benchmark.h>
#include <vector>

using namespace orbitrain;
using namespace orbitrain::orbit;

namespace {

ModelSpec starlink(bool stations) {
  ModelSpec spec;
  spec.walker.inclination_deg = 53;
  spec.walker.total = 72 * 22;
  spec.walker.planes = 72;
  spec.walker.phasing = 1;
  spec.walker.altitude_m = 550e3;
  spec.epoch_unix = 1710903960; // 2024-03-20T03:06:00Z
  if (stations) {
    spec.stations = {{"weilheim", 47.88, 11.08, 25},
                     {"santiago", -33.15, -70.67, 25},
                     {"hawaii", 19.82, -155.47, 25},
                     {"perth", -31.80, 115.89, 25}};
  }
  return spec;
}

constexpr int ps_slot = 0, scheduler_slot = 800;

void update(benchmark::State& state) {
  ConstellationModel model(starlink(true));
  model.set_targets({ps_slot, scheduler_slot});
  double t = 0;
  for (auto _ : state) {
    model.update(t += 1);
    benchmark::DoNotOptimize(model.links_up());
  }
  state.counters["satellites"] = model.size();
  state.counters["links_up"] = model.links_up();
  int seen = 0;
  for (int g = 0; g < model.station_count(); ++g)
    seen += static_cast<int>(model.contacts(g).size());
  state.counters["ground_contacts"] = seen;
}

void update_routes(benchmark::State& state) {
  ConstellationModel model(starlink(true));
  model.set_targets({ps_slot, scheduler_slot});
  double t = 0;
  long hops = 0, unreachable = 0;
  for (auto _ : state) {
    model.update(t += 1);
    hops = unreachable = 0;
    for (int s = 0; s < model.size(); ++s) {
      for (int target : {ps_slot, scheduler_slot}) {
        auto r = model.route(s, target);
        r ? hops += r->hops() : ++unreachable;
      }
      for (int g = 0; g < model.station_count(); ++g) {
        auto r = model.ground_route(g, s);
        r ? hops += r->hops() : ++unreachable;
      }
    }
    benchmark::DoNotOptimize(hops);
  }
  state.counters["routes"] = model.size() * (2 + model.station_count());
  state.counters["mean_hops"] =
      static_cast<double>(hops) / (model.size() * (2 + model.station_count()) - unreachable);
  state.counters["unreachable"] = static_cast<double>(unreachable);
}

void geometry_only(benchmark::State& state) {
  ConstellationModel model(starlink(false));
  double t = 0;
  for (auto _ : state) {
    model.update(t += 1);
    benchmark::DoNotOptimize(model.links_up());
  }
}

void all_pairs(benchmark::State& state) {
  ConstellationModel model(starlink(false));
  model.update(100);
  double sum = 0;
  for (auto _ : state) {
    auto d = model.all_pairs_latency();
    sum = 0;
    for (double v : d)
      if (v < infinity)
        sum += v;
    benchmark::DoNotOptimize(sum);
  }
  state.counters["pairs"] = static_cast<double>(model.size()) * model.size();
  state.counters["mean_latency_ms"] =
      sum / (static_cast<double>(model.size()) * model.size()) * 1e3;
}

double min_of(const std::vector<double>& v) {
  return *std::min_element(v.begin(), v.end());
}

} // namespace

BENCHMARK(update)->Unit(benchmark::kMillisecond)->ComputeStatistics("min", min_of);
BENCHMARK(update_routes)->Unit(benchmark::kMillisecond)->ComputeStatistics("min", min_of);
BENCHMARK(geometry_only)->Unit(benchmark::kMillisecond)->ComputeStatistics("min", min_of);
BENCHMARK(all_pairs)->Unit(benchmark::kMillisecond)->ComputeStatistics("min", min_of);

BENCHMARK_MAIN();
