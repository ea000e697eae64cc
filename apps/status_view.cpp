// Implementation of status_view.hpp.
#include "apps/status_view.hpp"

#include <fmt/format.h>

namespace orbitrain {

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string human_duration_ms(uint64_t ms) {
  uint64_t s = ms / 1000;
  if (s >= 3600)
    return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
  if (s >= 60)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}.{}s", s, (ms % 1000) / 100);
}

std::string status_table(const std::vector<SatelliteProbe>& probes) {
  std::string out = fmt::format("{:<12} {:<22} {:<12} {:>8} {:>7} {:>8} {:>9} {:>10} {:>11}\n",
                                "SATELLITE", "ADDRESS", "STATE", "UPTIME", "ACTORS", "SPAWNED",
                                "LOAD/CPU", "RSS", "MEM AVAIL");
  for (const auto& p : probes) {
    if (!p.up) {
      out += fmt::format("{:<12} {:<22} {:<12} {}\n", p.id, p.address, "unreachable", p.error);
      continue;
    }
    const auto& s = p.status;
    out += fmt::format("{:<12} {:<22} {:<12} {:>8} {:>7} {:>8} {:>9} {:>10} {:>11}\n", p.id,
                       p.address, "up", human_duration_ms(s.uptime_ms), s.actors_running,
                       s.supervised_actors, fmt::format("{:.2f}/{}", s.load1, s.cpu_count),
                       human_bytes(s.rss_bytes), human_bytes(s.mem_available_bytes));
  }
  // With an orbit model: where each satellite is and how it fares.
  bool orbit = false;
  for (const auto& p : probes)
    orbit = orbit || (p.up && p.status.has_orbit);
  if (!orbit)
    return out;
  out +=
      fmt::format("\n{:<12} {:>8} {:>9} {:>8} {:<8} {:>6} {:<8} {:>7} {:>6} {:>8}\n", "SATELLITE",
                  "LAT", "LON", "ALT", "SUN", "CHARGE", "GROUND", "ISL UP", "HELD", "DROPPED");
  for (const auto& p : probes) {
    if (!p.up || !p.status.has_orbit)
      continue;
    const auto& s = p.status;
    out += fmt::format(
        "{:<12} {:>8.2f} {:>9.2f} {:>6.0f}km {:<8} {:>5.1f}% {:<8} {:>7} {:>6} {:>8}\n", p.id,
        s.lat_deg, s.lon_deg, s.alt_km, s.sunlit ? "sunlit" : "eclipse", 100 * s.state_of_charge,
        s.in_contact ? "contact" : "-", s.links_up, s.link_held, s.link_dropped);
  }
  return out;
}

nlohmann::json status_json(const std::string& constellation,
                           const std::vector<SatelliteProbe>& probes) {
  nlohmann::json sats = nlohmann::json::array();
  for (const auto& p : probes) {
    nlohmann::json j = {
        {"id", p.id}, {"address", p.address}, {"state", p.up ? "up" : "unreachable"}};
    if (p.up) {
      const auto& s = p.status;
      j["uptime_ms"] = s.uptime_ms;
      j["pid"] = s.pid;
      j["actors_running"] = s.actors_running;
      j["supervised_actors"] = s.supervised_actors;
      j["cpu_count"] = s.cpu_count;
      j["load1"] = s.load1;
      j["process_cpu_seconds"] = s.process_cpu_seconds;
      j["rss_bytes"] = s.rss_bytes;
      j["mem_total_bytes"] = s.mem_total_bytes;
      j["mem_available_bytes"] = s.mem_available_bytes;
      j["round_trip_ms"] = p.round_trip_ms;
      if (s.has_orbit)
        j["orbit"] = {{"sim_time_s", s.sim_time_s},
                      {"lat_deg", s.lat_deg},
                      {"lon_deg", s.lon_deg},
                      {"alt_km", s.alt_km},
                      {"sunlit", s.sunlit},
                      {"state_of_charge", s.state_of_charge},
                      {"in_contact", s.in_contact},
                      {"isl_up", s.links_up},
                      {"link_held", s.link_held},
                      {"link_dropped", s.link_dropped},
                      {"link_delivered", s.link_delivered},
                      {"link_bytes", s.link_bytes},
                      {"min_state_of_charge", s.min_state_of_charge},
                      {"below_floor_s", s.below_floor_s}};
    } else {
      j["error"] = p.error;
    }
    sats.push_back(std::move(j));
  }
  return {{"constellation", constellation}, {"satellites", std::move(sats)}};
}

} // namespace orbitrain
