// Implementation of plan.hpp.
#include "orbit/plan.hpp"

#include "orbit/energy.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace orbitrain::orbit {

void Spread::add(double v) {
  min = count == 0 ? v : std::min(min, v);
  max = count == 0 ? v : std::max(max, v);
  sum_ += v;
  ++count;
}

void Spread::finish() {
  mean = count > 0 ? sum_ / count : 0;
}

Plan make_plan(const orbitrain::Constellation& file, const PlanOptions& options) {
  if (!(options.hours > 0) || !(options.window_step_s > 0) || !(options.sample_step_s > 0))
    throw std::invalid_argument("the plan's span and steps must be positive");
  Plan plan;
  plan.name = file.name;
  plan.spec = model_spec(file); // throws without [orbit]
  plan.time_scale = file.orbit->time_scale;
  plan.options = options;
  plan.span_s = options.hours * 3600;
  plan.power = power_model(file.energy);
  ConstellationModel model(plan.spec);
  plan.period_s = model.walker().period();
  const double span = plan.span_s;

  std::vector<std::string> id_of_slot(static_cast<size_t>(model.size()));
  for (const auto& s : file.satellites)
    id_of_slot[static_cast<size_t>(s.slot)] = s.id;
  const SatelliteConfig* ps = file.find(file.job.parameter_server);
  const int ps_slot = ps ? ps->slot : -1;
  if (ps_slot >= 0)
    model.set_targets({ps_slot});

  for (const auto& s : file.satellites) {
    SatellitePlan sp;
    sp.id = s.id;
    sp.slot = s.slot;
    sp.period_s = plan.period_s;
    sp.eclipses = model.eclipses(s.slot, 0, span, options.window_step_s);
    sp.sunlit_fraction = 1 - overlap(sp.eclipses, 0, span) / span;
    Battery battery(plan.power, file.energy.initial_soc);
    sp.soc.push_back(battery.soc());
    double lowest = battery.charge_wh();
    for (double t = 0; t < span;) {
      const double next = std::min(span, t + options.sample_step_s);
      lowest = std::min(lowest, battery.run(t, next, 0, sp.eclipses));
      sp.soc.push_back(battery.soc());
      t = next;
    }
    sp.soc_min = lowest / plan.power.battery_wh;
    sp.below_limit = lowest < plan.power.floor_wh();
    plan.satellites.push_back(std::move(sp));
  }

  for (int g = 0; g < model.station_count(); ++g) {
    StationPlan st;
    st.station = plan.spec.stations[static_cast<size_t>(g)];
    for (const auto& s : file.satellites)
      for (auto w : model.contact_windows(g, s.slot, 0, span, options.window_step_s))
        st.contacts.push_back({s.id, s.slot, w});
    std::sort(
        st.contacts.begin(), st.contacts.end(),
        [](const ContactPlan& a, const ContactPlan& b) { return a.window.begin < b.window.begin; });
    plan.stations.push_back(std::move(st));
  }

  // Links and routes to the parameter server, sampled.
  for (const auto& l : model.links())
    plan.links.push_back({l.a,
                          l.b,
                          id_of_slot[static_cast<size_t>(l.a)],
                          id_of_slot[static_cast<size_t>(l.b)],
                          0,
                          {}});
  int samples = 0;
  for (double t = 0; t <= span + 1e-9; t += options.sample_step_s) {
    model.update(t);
    ++samples;
    for (size_t i = 0; i < plan.links.size(); ++i) {
      const auto& l = model.links()[i];
      if (l.up) {
        plan.links[i].up_fraction += 1;
        plan.links[i].latency_s.add(l.latency_s);
      }
    }
    if (ps_slot >= 0)
      for (auto& sp : plan.satellites) {
        const double lat = model.latency(sp.slot, ps_slot);
        if (lat < infinity) {
          sp.ps_route_fraction += 1;
          sp.ps_latency_s.add(lat);
        }
      }
  }
  for (auto& l : plan.links) {
    l.up_fraction /= samples;
    l.latency_s.finish();
  }
  for (auto& sp : plan.satellites) {
    sp.ps_route_fraction /= samples;
    sp.ps_latency_s.finish();
  }
  return plan;
}

} // namespace orbitrain::orbit
