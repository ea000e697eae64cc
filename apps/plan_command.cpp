// Implementation of plan_command.hpp: renders an orbit::Plan as a table, as
// JSON, or as an SVG timeline.
#include "apps/plan_command.hpp"

#include "apps/cli_util.hpp"
#include "orbit/plan.hpp"

#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

namespace orbitrain {

namespace {

using orbit::Plan;
using orbit::Window;

// "1:02:03" from seconds.
std::string hms(double s) {
  const auto t = static_cast<long long>(std::llround(s));
  return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
}

std::string windows_text(const std::vector<Window>& ws) {
  std::string out;
  for (const auto& w : ws)
    out += fmt::format("{}{}-{}", out.empty() ? "" : "  ", hms(w.begin), hms(w.end));
  return out.empty() ? "none" : out;
}

std::string ms(const orbit::Spread& s) {
  if (s.count == 0)
    return "-";
  return fmt::format("{:.2f}/{:.2f}/{:.2f}", s.min * 1e3, s.mean * 1e3, s.max * 1e3);
}

std::string table(const Plan& p) {
  const auto& w = p.spec.walker;
  std::string out = fmt::format(
      "constellation {}: Walker {} at {:g} km{}, epoch {}\n"
      "span {:g} h of simulated time ({} of wall time at time scale {:g}); orbital period "
      "{:.2f} min\n\n",
      p.name, w.to_string(), w.altitude_m / 1e3, p.spec.j2 ? " (J2)" : "",
      format_utc_time(p.spec.epoch_unix), p.options.hours, hms(p.span_s / p.time_scale),
      p.time_scale, p.period_s / 60);

  out += fmt::format("{:<12} {:>4} {:>8} {:>8} {:>7} {:>8} {:>8}  {:>9} {:>22}\n", "SATELLITE",
                     "SLOT", "PERIOD", "ECLIPSES", "SUNLIT", "SOC MIN", "SOC END", "PS ROUTE",
                     "PS LATENCY ms min/mean/max");
  for (const auto& s : p.satellites)
    out += fmt::format("{:<12} {:>4} {:>7.2f}m {:>8} {:>6.1f}% {:>7.1f}%{} {:>7.1f}%  {:>8.1f}% "
                       "{:>22}\n",
                       s.id, s.slot, s.period_s / 60, s.eclipses.size(), 100 * s.sunlit_fraction,
                       100 * s.soc_min, s.below_limit ? "!" : " ", 100 * s.soc.back(),
                       100 * s.ps_route_fraction, ms(s.ps_latency_s));
  out += fmt::format("(idle state of charge; ! marks a fall below the depth-of-discharge limit, "
                     "{:.0f}%)\n",
                     100 * (1 - p.power.depth_of_discharge));

  out += "\nECLIPSES (h:mm:ss since the epoch)\n";
  for (const auto& s : p.satellites)
    out += fmt::format("{:<12} {}\n", s.id, windows_text(s.eclipses));

  for (const auto& st : p.stations) {
    double total = 0;
    for (const auto& c : st.contacts)
      total += c.window.length();
    out += fmt::format("\nCONTACTS of {} (lat {:g}, lon {:g}, elevation >= {:g} deg): {} passes, "
                       "{:.1f} min in all\n",
                       st.station.name, st.station.lat_deg, st.station.lon_deg,
                       st.station.min_elevation_deg, st.contacts.size(), total / 60);
    for (const auto& c : st.contacts)
      out += fmt::format("  {:<12} {} - {}  {:5.1f} min\n", c.satellite, hms(c.window.begin),
                         hms(c.window.end), c.window.length() / 60);
  }

  int never = 0;
  out += fmt::format("\nINTER-SATELLITE LINKS (+Grid, sampled every {:g} s)\n",
                     p.options.sample_step_s);
  out += fmt::format("{:<22} {:>7}  {:>26}\n", "LINK (slots)", "UP", "LATENCY ms min/mean/max");
  for (const auto& l : p.links) {
    if (l.up_fraction == 0) {
      ++never;
      continue;
    }
    auto name = [](int slot, const std::string& id) {
      return id.empty() ? std::to_string(slot) : fmt::format("{}({})", slot, id);
    };
    out += fmt::format("{:<22} {:>6.1f}%  {:>26}\n", name(l.a, l.a_id) + "-" + name(l.b, l.b_id),
                       100 * l.up_fraction, ms(l.latency_s));
  }
  out += fmt::format(
      "{} of {} links never up (no line of sight above {:g} km, or beyond {:g} km)\n", never,
      p.links.size(), p.spec.links.min_altitude_m / 1e3, p.spec.links.max_range_m / 1e3);
  return out;
}

nlohmann::json spread_json(const orbit::Spread& s, double scale) {
  if (s.count == 0)
    return nullptr;
  return {{"min", s.min * scale}, {"mean", s.mean * scale}, {"max", s.max * scale}};
}

nlohmann::json windows_json(const std::vector<Window>& ws) {
  auto out = nlohmann::json::array();
  for (const auto& w : ws)
    out.push_back({{"begin_s", w.begin}, {"end_s", w.end}});
  return out;
}

nlohmann::json to_json(const Plan& p) {
  const auto& w = p.spec.walker;
  nlohmann::json j;
  j["constellation"] = p.name;
  j["walker"] = {{"pattern", w.to_string()}, {"inclination_deg", w.inclination_deg},
                 {"total", w.total},         {"planes", w.planes},
                 {"phasing", w.phasing},     {"altitude_km", w.altitude_m / 1e3},
                 {"j2", p.spec.j2}};
  j["epoch"] = format_utc_time(p.spec.epoch_unix);
  j["time_scale"] = p.time_scale;
  j["hours"] = p.options.hours;
  j["span_s"] = p.span_s;
  j["period_s"] = p.period_s;
  j["sample_step_s"] = p.options.sample_step_s;
  j["energy"] = {{"solar_w", p.power.solar_w},
                 {"battery_wh", p.power.battery_wh},
                 {"depth_of_discharge", p.power.depth_of_discharge},
                 {"idle_w", p.power.idle_w},
                 {"per_core_w", p.power.per_core_w}};
  auto sats = nlohmann::json::array();
  for (const auto& s : p.satellites)
    sats.push_back(
        {{"id", s.id},
         {"slot", s.slot},
         {"period_s", s.period_s},
         {"eclipses", windows_json(s.eclipses)},
         {"sunlit_fraction", s.sunlit_fraction},
         {"soc", s.soc},
         {"soc_min", s.soc_min},
         {"below_limit", s.below_limit},
         {"route_to_parameter_server",
          {{"fraction", s.ps_route_fraction}, {"latency_ms", spread_json(s.ps_latency_s, 1e3)}}}});
  j["satellites"] = sats;
  auto stations = nlohmann::json::array();
  for (const auto& st : p.stations) {
    auto contacts = nlohmann::json::array();
    for (const auto& c : st.contacts)
      contacts.push_back({{"satellite", c.satellite},
                          {"slot", c.slot},
                          {"begin_s", c.window.begin},
                          {"end_s", c.window.end},
                          {"duration_s", c.window.length()}});
    stations.push_back({{"name", st.station.name},
                        {"lat", st.station.lat_deg},
                        {"lon", st.station.lon_deg},
                        {"min_elevation_deg", st.station.min_elevation_deg},
                        {"contacts", contacts}});
  }
  j["ground_stations"] = stations;
  auto links = nlohmann::json::array();
  for (const auto& l : p.links) {
    nlohmann::json e = {{"a", l.a},
                        {"b", l.b},
                        {"up_fraction", l.up_fraction},
                        {"latency_ms", spread_json(l.latency_s, 1e3)}};
    if (!l.a_id.empty())
      e["a_id"] = l.a_id;
    if (!l.b_id.empty())
      e["b_id"] = l.b_id;
    links.push_back(e);
  }
  j["links"] = links;
  return j;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

// One row per satellite: sunlit background, eclipse bands, contacts as
// coloured marks (one colour per ground station) and the idle state of charge
// as a thin line; an hour axis below and a legend above.
std::string svg(const Plan& p) {
  static const char* palette[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd",
                                  "#ff7f0e", "#17becf", "#e377c2", "#8c564b"};
  auto colour = [](size_t g) { return palette[g % (sizeof palette / sizeof *palette)]; };
  const double left = 110, right = 20, top = 70, row = 22, plot_w = 1000;
  const double rows = static_cast<double>(p.satellites.size());
  const double width = left + plot_w + right, height = top + rows * row + 50;
  auto x = [&](double t) { return left + plot_w * t / p.span_s; };
  std::string o;
  o += fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
                   "viewBox=\"0 0 {:.0f} {:.0f}\" font-family=\"sans-serif\" font-size=\"12\">\n",
                   width, height, width, height);
  o += fmt::format("<rect x=\"0\" y=\"0\" width=\"{:.0f}\" height=\"{:.0f}\" fill=\"white\"/>\n",
                   width, height);
  o += fmt::format("<text x=\"{}\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}: Walker {} at "
                   "{:g} km, from {}, {:g} h</text>\n",
                   left, xml_escape(p.name), xml_escape(p.spec.walker.to_string()),
                   p.spec.walker.altitude_m / 1e3, format_utc_time(p.spec.epoch_unix),
                   p.options.hours);
  // Legend.
  double lx = left;
  auto legend = [&](const std::string& fill, const std::string& label, double h, double dy,
                    const std::string& extra = "") {
    o += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"18\" height=\"{:.0f}\" "
                     "fill=\"{}\"{}/>\n",
                     lx, 36 + dy, h, fill, extra);
    o += fmt::format("<text x=\"{:.1f}\" y=\"48\">{}</text>\n", lx + 24, xml_escape(label));
    lx += 34 + 7.0 * static_cast<double>(label.size());
  };
  legend("#fff3c4", "sunlit", 14, 0, " stroke=\"#ccc\"");
  legend("#4d4d4d", "eclipse", 14, 0);
  for (size_t g = 0; g < p.stations.size(); ++g)
    legend(colour(g), "contact " + p.stations[g].station.name, 8, 3);
  o += fmt::format("<line x1=\"{:.1f}\" y1=\"42\" x2=\"{:.1f}\" y2=\"42\" stroke=\"#3d8bff\" "
                   "stroke-width=\"1.5\"/>\n",
                   lx, lx + 18);
  o += fmt::format("<text x=\"{:.1f}\" y=\"48\">idle state of charge</text>\n", lx + 24);

  // Rows.
  for (size_t i = 0; i < p.satellites.size(); ++i) {
    const auto& s = p.satellites[i];
    const double y = top + static_cast<double>(i) * row;
    o += fmt::format("<text x=\"{:.0f}\" y=\"{:.1f}\" text-anchor=\"end\">{} ({})</text>\n",
                     left - 8, y + row * 0.65, xml_escape(s.id), s.slot);
    o += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                     "fill=\"#fff3c4\"/>\n",
                     left, y + 2, plot_w, row - 4);
    for (const auto& w : s.eclipses)
      o += fmt::format("<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" "
                       "fill=\"#4d4d4d\"><title>{} eclipse {}-{}</title></rect>\n",
                       x(w.begin), y + 2, x(w.end) - x(w.begin), row - 4, xml_escape(s.id),
                       hms(w.begin), hms(w.end));
    // State of charge: bottom of the row is 0, top is 1.
    std::string pts;
    for (size_t k = 0; k < s.soc.size(); ++k) {
      const double t = std::min(p.span_s, static_cast<double>(k) * p.options.sample_step_s);
      pts += fmt::format("{}{:.1f},{:.1f}", k ? " " : "", x(t), y + 2 + (row - 4) * (1 - s.soc[k]));
    }
    o += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"#3d8bff\" "
                     "stroke-width=\"1\"/>\n",
                     pts);
  }
  // Contacts, over the rows.
  for (size_t g = 0; g < p.stations.size(); ++g)
    for (const auto& c : p.stations[g].contacts)
      for (size_t i = 0; i < p.satellites.size(); ++i)
        if (p.satellites[i].id == c.satellite) {
          const double y = top + static_cast<double>(i) * row;
          o += fmt::format("<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"8\" "
                           "fill=\"{}\"><title>{} sees {} {}-{}</title></rect>\n",
                           x(c.window.begin), y + row / 2 - 4,
                           std::max(2.0, x(c.window.end) - x(c.window.begin)), colour(g),
                           xml_escape(p.stations[g].station.name), xml_escape(c.satellite),
                           hms(c.window.begin), hms(c.window.end));
        }
  // Time axis in hours.
  const double axis_y = top + rows * row + 6;
  o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\"/>\n",
                   left, axis_y, left + plot_w, axis_y);
  const double hours = p.options.hours;
  const double tick_h = hours <= 2    ? 0.25
                        : hours <= 6  ? 0.5
                        : hours <= 24 ? 1
                                      : std::ceil(hours / 24);
  for (double h = 0; h <= hours + 1e-9; h += tick_h) {
    const double tx = x(h * 3600);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                     "stroke=\"black\"/>\n",
                     tx, axis_y, tx, axis_y + 5);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:g} h</text>\n", tx,
                     axis_y + 18, h);
  }
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">simulated time since "
                   "the epoch (orbital period {:.1f} min)</text>\n",
                   left + plot_w / 2, axis_y + 36, p.period_s / 60);
  o += "</svg>\n";
  return o;
}

} // namespace

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "plan", "Eclipses, ground contacts, link latencies and energy of a constellation over time "
              "(from its file alone; no satellite needs to run)");
  struct Options {
    std::string config;
    double hours = 3;
    bool json = false;
    std::string svg;
    double step = 10;
    double sample = 60;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--config,-c", o->config, "Constellation file (with an [orbit] section)")
      ->required();
  cmd->add_option("--hours", o->hours, "Span of simulated time, hours")
      ->capture_default_str()
      ->check(CLI::Range(1e-3, 24.0 * 30));
  cmd->add_flag("--json", o->json, "Print the plan as JSON");
  cmd->add_option("--svg", o->svg, "Also write a timeline (SVG) to this file");
  cmd->add_option("--step", o->step, "Search step for eclipses and contacts, seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 600.0));
  cmd->add_option("--sample", o->sample, "Sampling of links, routes and charge, seconds")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  cmd->callback([o] {
    auto c = load_or_fail(o->config);
    if (!c.orbit)
      fail(o->config + ": no [orbit] section: the constellation has no orbit to plan", 2);
    orbit::PlanOptions po;
    po.hours = o->hours;
    po.window_step_s = o->step;
    po.sample_step_s = o->sample;
    const auto plan = orbit::make_plan(c, po);
    if (!o->svg.empty()) {
      std::ofstream out(o->svg, std::ios::binary);
      out << svg(plan);
      if (!out.flush())
        fail("cannot write " + o->svg);
    }
    if (o->json)
      std::cout << to_json(plan).dump(2) << "\n";
    else
      std::cout << table(plan);
  });
}

} // namespace orbitrain
