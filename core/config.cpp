// Validating loader for the constellation file (see config.hpp). It walks the
// TOML tree with toml++, which records the source line of every key and
// value, and checks each table against the keys it allows.
#include "core/config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace orbitrain {

std::string ConfigIssue::to_string() const {
  std::string out = file;
  if (line > 0)
    out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty())
    out += key + ": ";
  out += message;
  return out;
}

namespace {

std::string join_issues(const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (const auto& i : issues) {
    if (!out.empty())
      out += '\n';
    out += i.to_string();
  }
  return out;
}

} // namespace

ConfigError::ConfigError(std::vector<ConfigIssue> issues)
    : std::runtime_error(join_issues(issues)), issues_(std::move(issues)) {}

const SatelliteConfig* Constellation::find(std::string_view id) const {
  for (const auto& s : satellites)
    if (s.id == id)
      return &s;
  return nullptr;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0)
    return std::nullopt;
  double number = 0;
  try {
    size_t used = 0;
    number = std::stod(std::string(text.substr(0, i)), &used);
    if (used != i)
      return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  auto unit = text.substr(i);
  double ms = 0;
  if (unit == "ms")
    ms = number;
  else if (unit == "s")
    ms = number * 1e3;
  else if (unit == "min")
    ms = number * 60e3;
  else if (unit == "h")
    ms = number * 3600e3;
  else
    return std::nullopt;
  if (!std::isfinite(ms) || ms > 1e12)
    return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

std::optional<double> utc_seconds(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi,
                                  double sec) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || y > 2200 || mo < 1 || mo > 12 || d < 1 ||
      d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) || h < 0 || h > 23 || mi < 0 || mi > 59 ||
      !(sec >= 0 && sec < 60))
    return std::nullopt;
  return static_cast<double>(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) + sec;
}

} // namespace

std::optional<double> parse_utc_time(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)
  const std::string t(text);
  auto digits = [&](size_t at, size_t n, int& v) {
    if (at + n > t.size())
      return false;
    v = 0;
    for (size_t k = at; k < at + n; ++k) {
      if (!std::isdigit(static_cast<unsigned char>(t[k])))
        return false;
      v = v * 10 + (t[k] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (t.size() < 20 || !digits(0, 4, y) || t[4] != '-' || !digits(5, 2, mo) || t[7] != '-' ||
      !digits(8, 2, d) || (t[10] != 'T' && t[10] != 't') || !digits(11, 2, h) || t[13] != ':' ||
      !digits(14, 2, mi) || t[16] != ':' || !digits(17, 2, se))
    return std::nullopt;
  size_t j = 19;
  double frac = 0;
  if (t[j] == '.') {
    double scale = 0.1;
    ++j;
    const size_t start = j;
    for (; j < t.size() && std::isdigit(static_cast<unsigned char>(t[j])); ++j, scale /= 10)
      frac += (t[j] - '0') * scale;
    if (j == start)
      return std::nullopt;
  }
  const std::string zone = t.substr(j);
  if (zone != "Z" && zone != "z" && zone != "+00:00")
    return std::nullopt;
  return utc_seconds(y, mo, d, h, mi, se + frac);
}

std::string format_utc_time(double unix_seconds) {
  const int64_t s = static_cast<int64_t>(std::floor(unix_seconds));
  int64_t days = s >= 0 ? s / 86400 : (s - 86399) / 86400;
  const int64_t rem = s - days * 86400;
  // civil_from_days (H. Hinnant).
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp + (mp < 10 ? 3 : -9);
  const int64_t y = yoe + era * 400 + (m <= 2);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ",
                static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                static_cast<long long>(rem / 3600), static_cast<long long>(rem / 60 % 60),
                static_cast<long long>(rem % 60));
  return buf;
}

namespace {

int line_of(const toml::node& n) {
  return static_cast<int>(n.source().begin.line);
}

std::string type_name(const toml::node& n) {
  std::ostringstream out;
  out << n.type();
  return out.str();
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// Sections that later layers of orbitrain fill. They may appear (empty) in a
// file today; a key inside one is reported as not supported yet, rather than
// silently ignored.
const std::set<std::string_view> reserved_sections = {"security"};

class Checker {
public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void add(int line, std::string key, std::string message) {
    issues_.push_back(ConfigIssue{file_, line, std::move(key), std::move(message)});
  }

  // Reports every key of `t` that is not in `allowed`.
  void only_keys(const toml::table& t, const std::string& path,
                 std::initializer_list<std::string_view> allowed) {
    for (auto&& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end())
        continue;
      std::string hint;
      for (auto a : allowed)
        hint += (hint.empty() ? "" : ", ") + std::string(a);
      add(static_cast<int>(k.source().begin.line), dotted(path, k.str()),
          "unknown key (allowed here: " + hint + ")");
    }
  }

  const toml::node* require(const toml::table& t, int table_line, const std::string& path,
                            std::string_view key, bool required) {
    const toml::node* n = t.get(key);
    if (!n && required)
      add(table_line, dotted(path, key), "missing required key");
    return n;
  }

  std::optional<std::string> string(const toml::table& t, int table_line, const std::string& path,
                                    std::string_view key, bool required) {
    const toml::node* n = require(t, table_line, path, key, required);
    if (!n)
      return std::nullopt;
    if (!n->is_string()) {
      add(line_of(*n), dotted(path, key), "expected a string, got " + describe(*n));
      return std::nullopt;
    }
    return n->as_string()->get();
  }

  std::optional<int64_t> integer(const toml::table& t, int table_line, const std::string& path,
                                 std::string_view key, bool required, int64_t lo, int64_t hi) {
    const toml::node* n = require(t, table_line, path, key, required);
    if (!n)
      return std::nullopt;
    if (!n->is_integer()) {
      add(line_of(*n), dotted(path, key), "expected an integer, got " + describe(*n));
      return std::nullopt;
    }
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) {
      add(line_of(*n), dotted(path, key),
          std::to_string(v) + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
      return std::nullopt;
    }
    return v;
  }

  // A number (integer or float) within [lo, hi].
  std::optional<double> number(const toml::table& t, int table_line, const std::string& path,
                               std::string_view key, bool required, double lo, double hi) {
    const toml::node* n = require(t, table_line, path, key, required);
    if (!n)
      return std::nullopt;
    double v = 0;
    if (n->is_integer()) {
      v = static_cast<double>(n->as_integer()->get());
    } else if (n->is_floating_point()) {
      v = n->as_floating_point()->get();
    } else {
      add(line_of(*n), dotted(path, key), "expected a number, got " + describe(*n));
      return std::nullopt;
    }
    if (!(v >= lo && v <= hi)) {
      add(line_of(*n), dotted(path, key),
          format_number(v) + " is out of range " + format_number(lo) + ".." + format_number(hi));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const toml::table& t, int table_line, const std::string& path,
                              std::string_view key) {
    const toml::node* n = require(t, table_line, path, key, false);
    if (!n)
      return std::nullopt;
    if (!n->is_boolean()) {
      add(line_of(*n), dotted(path, key), "expected true or false, got " + describe(*n));
      return std::nullopt;
    }
    return n->as_boolean()->get();
  }

  static std::string format_number(double v) {
    std::ostringstream out;
    out << v;
    return out.str();
  }

  std::optional<std::chrono::milliseconds> duration(const toml::table& t, int table_line,
                                                    const std::string& path, std::string_view key) {
    auto text = string(t, table_line, path, key, false);
    if (!text)
      return std::nullopt;
    auto d = parse_duration(*text);
    if (!d || d->count() <= 0) {
      add(line_of(*t.get(key)), dotted(path, key),
          "'" + *text + "' is not a positive duration (examples: \"500ms\", \"2s\", \"1min\")");
      return std::nullopt;
    }
    return d;
  }

  const toml::table* table(const toml::table& t, const std::string& path, std::string_view key) {
    const toml::node* n = t.get(key);
    if (!n)
      return nullptr;
    if (!n->is_table()) {
      add(line_of(*n), dotted(path, key),
          "expected a table ([" + std::string(key) + "]), got " + describe(*n));
      return nullptr;
    }
    return n->as_table();
  }

  static std::string dotted(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

  std::vector<ConfigIssue> take() { return std::move(issues_); }

private:
  static std::string describe(const toml::node& n) {
    std::string t = type_name(n);
    if (n.is_string())
      return t + " \"" + n.as_string()->get() + "\"";
    if (n.is_integer())
      return t + " " + std::to_string(n.as_integer()->get());
    if (n.is_floating_point()) {
      std::ostringstream out;
      out << n.as_floating_point()->get();
      return t + " " + out.str();
    }
    if (n.is_boolean())
      return t + (n.as_boolean()->get() ? " true" : " false");
    return t;
  }

  std::string file_;
  std::vector<ConfigIssue> issues_;
};

void check_reserved(Checker& c, const toml::table& root) {
  for (auto name : reserved_sections) {
    const toml::node* n = root.get(name);
    if (!n)
      continue;
    auto report = [&](const toml::table& t, const std::string& path) {
      for (auto&& [k, v] : t)
        c.add(static_cast<int>(k.source().begin.line), Checker::dotted(path, k.str()),
              "the [" + std::string(name) + "] section is reserved and not supported by this " +
                  "version of orbitrain yet; remove the key");
    };
    if (n->is_table())
      report(*n->as_table(), std::string(name));
    else if (n->is_array()) {
      const auto& arr = *n->as_array();
      for (size_t i = 0; i < arr.size(); ++i)
        if (arr[i].is_table())
          report(*arr[i].as_table(), std::string(name) + "[" + std::to_string(i + 1) + "]");
    }
  }
}

// [orbit], the satellites' slots, [links], [[ground_station]] and [energy].
void check_orbit(Checker& c, const toml::table& root, Constellation& out,
                 const std::vector<const toml::node*>& slot_nodes) {
  if (const toml::table* o = c.table(root, "", "orbit")) {
    const int tl = line_of(*o);
    c.only_keys(*o, "orbit", {"walker", "altitude_km", "epoch", "start", "time_scale", "j2"});
    OrbitSettings orbit;
    bool valid = true;
    auto walker = c.string(*o, tl, "orbit", "walker", true);
    auto altitude = c.number(*o, tl, "orbit", "altitude_km", true, 0, 100000);
    if (walker && altitude) {
      auto w = WalkerDelta::parse(*walker, *altitude * 1e3);
      if (w) {
        orbit.walker = *w;
      } else {
        // An altitude problem belongs to altitude_km's line, the rest to walker's.
        const bool alt = w.error().message.find("altitude") != std::string::npos;
        c.add(line_of(*o->get(alt ? "altitude_km" : "walker")),
              alt ? "orbit.altitude_km" : "orbit.walker", w.error().message);
        valid = false;
      }
    } else {
      valid = false;
    }
    // A UTC instant: an ISO-8601 string or a TOML date-time with an offset.
    auto utc_key = [&](const char* key) -> std::optional<double> {
      const toml::node* e = o->get(key);
      if (!e)
        return std::nullopt;
      std::optional<double> t;
      if (e->is_string()) {
        t = parse_utc_time(e->as_string()->get());
      } else if (e->is_date_time()) {
        const auto dt = e->as_date_time()->get();
        if (dt.offset) {
          auto base = utc_seconds(dt.date.year, dt.date.month, dt.date.day, dt.time.hour,
                                  dt.time.minute, dt.time.second + dt.time.nanosecond * 1e-9);
          if (base)
            t = *base - dt.offset->minutes * 60.0;
        }
      }
      if (!t)
        c.add(line_of(*e), std::string("orbit.") + key,
              "expected an ISO-8601 UTC time such as \"2026-03-20T03:06:00Z\"");
      return t;
    };
    if (auto t = utc_key("epoch"))
      orbit.epoch_unix = *t;
    orbit.start_unix = utc_key("start");
    if (auto s = c.number(*o, tl, "orbit", "time_scale", false, 1e-6, 1e6))
      orbit.time_scale = *s;
    if (auto j2 = c.boolean(*o, tl, "orbit", "j2"))
      orbit.j2 = *j2;
    if (valid)
      out.orbit = orbit;
  }

  // Slots: an explicit `slot`, or the satellite's position in the file.
  std::map<int, int> slot_lines;
  for (size_t i = 0; i < out.satellites.size() && i < slot_nodes.size(); ++i) {
    auto& s = out.satellites[i];
    const std::string path = "satellite[" + std::to_string(i + 1) + "]";
    const toml::node* n = slot_nodes[i];
    if (n && !root.get("orbit")) {
      c.add(line_of(*n), path + ".slot", "a slot needs an [orbit] section");
      continue;
    }
    if (!out.orbit)
      continue;
    const int total = out.orbit->walker.total;
    int line = s.line;
    if (n) {
      line = line_of(*n);
      if (!n->is_integer()) {
        c.add(line, path + ".slot", "expected an integer");
        continue;
      }
      const int64_t v = n->as_integer()->get();
      if (v < 0 || v >= total) {
        c.add(line, path + ".slot",
              std::to_string(v) + " is out of range 0.." + std::to_string(total - 1) +
                  " (the Walker pattern " + out.orbit->walker.to_string() + " has " +
                  std::to_string(total) + " slots)");
        continue;
      }
      s.slot = static_cast<int>(v);
    } else if (static_cast<int>(i) >= total) {
      c.add(line, path,
            "more satellites than slots: the Walker pattern " + out.orbit->walker.to_string() +
                " has " + std::to_string(total) + " slots, this file declares " +
                std::to_string(out.satellites.size()) + " satellites");
      continue;
    } else {
      s.slot = static_cast<int>(i);
    }
    if (auto [it, fresh] = slot_lines.emplace(s.slot, line); !fresh)
      c.add(line, path + (n ? ".slot" : ""),
            "duplicate slot " + std::to_string(s.slot) + " (already taken on line " +
                std::to_string(it->second) +
                (n ? ")"
                   : "; satellites without `slot` take their "
                     "position in the file)"));
  }

  // [links]
  if (const toml::table* l = c.table(root, "", "links")) {
    const int tl = line_of(*l);
    c.only_keys(*l, "links",
                {"isl_bandwidth_mbps", "max_range_km", "min_altitude_km", "ground_bandwidth_mbps",
                 "queue_limit_mib"});
    auto& ls = out.links;
    if (auto v = c.number(*l, tl, "links", "isl_bandwidth_mbps", false, 1e-3, 1e7))
      ls.isl_bandwidth_mbps = *v;
    if (auto v = c.number(*l, tl, "links", "max_range_km", false, 1, 1e6))
      ls.max_range_km = *v;
    if (auto v = c.number(*l, tl, "links", "min_altitude_km", false, 0, 1000)) {
      ls.min_altitude_km = *v;
      if (out.orbit && *v >= out.orbit->walker.altitude_m / 1e3)
        c.add(line_of(*l->get("min_altitude_km")), "links.min_altitude_km",
              "must be below the orbit's altitude, or no link could ever be up");
    }
    if (auto v = c.number(*l, tl, "links", "ground_bandwidth_mbps", false, 1e-3, 1e7))
      ls.ground_bandwidth_mbps = *v;
    if (auto v = c.number(*l, tl, "links", "queue_limit_mib", false, 1e-3, 1e6))
      ls.queue_limit_mib = *v;
  }

  // [[ground_station]]
  if (const toml::node* gs = root.get("ground_station")) {
    if (!gs->is_array() || !gs->as_array()->is_array_of_tables()) {
      c.add(line_of(*gs), "ground_station",
            "expected an array of tables ([[ground_station]] sections), got " + type_name(*gs));
    } else {
      std::map<std::string, int> names;
      const auto& arr = *gs->as_array();
      for (size_t i = 0; i < arr.size(); ++i) {
        const auto& t = *arr[i].as_table();
        const std::string path = "ground_station[" + std::to_string(i + 1) + "]";
        const int tl = line_of(t);
        if (!root.get("orbit"))
          c.add(tl, path, "a ground station needs an [orbit] section");
        c.only_keys(t, path, {"name", "lat", "lon", "min_elevation_deg"});
        GroundStationConfig g;
        g.line = tl;
        if (auto name = c.string(t, tl, path, "name", true)) {
          const int l = line_of(*t.get("name"));
          if (!valid_id(*name))
            c.add(l, path + ".name",
                  "'" + *name + "' is not a valid name (1-64 of A-Z a-z 0-9 - _ .)");
          else if (auto [it, fresh] = names.emplace(*name, l); !fresh)
            c.add(l, path + ".name",
                  "duplicate ground station '" + *name + "' (first declared on line " +
                      std::to_string(it->second) + ")");
          g.name = *name;
        }
        if (auto v = c.number(t, tl, path, "lat", true, -90, 90))
          g.lat_deg = *v;
        if (auto v = c.number(t, tl, path, "lon", true, -180, 180))
          g.lon_deg = *v;
        if (auto v = c.number(t, tl, path, "min_elevation_deg", false, 0, 90))
          g.min_elevation_deg = *v;
        out.ground_stations.push_back(std::move(g));
      }
    }
  }

  // [energy]
  if (const toml::table* e = c.table(root, "", "energy")) {
    const int tl = line_of(*e);
    c.only_keys(
        *e, "energy",
        {"solar_w", "battery_wh", "depth_of_discharge", "idle_w", "per_core_w", "initial_soc"});
    auto& es = out.energy;
    if (auto v = c.number(*e, tl, "energy", "solar_w", false, 0, 1e6))
      es.solar_w = *v;
    if (auto v = c.number(*e, tl, "energy", "battery_wh", false, 1e-3, 1e7))
      es.battery_wh = *v;
    if (auto v = c.number(*e, tl, "energy", "depth_of_discharge", false, 0, 1))
      es.depth_of_discharge = *v;
    if (auto v = c.number(*e, tl, "energy", "idle_w", false, 0, 1e6))
      es.idle_w = *v;
    if (auto v = c.number(*e, tl, "energy", "per_core_w", false, 0, 1e6))
      es.per_core_w = *v;
    if (auto v = c.number(*e, tl, "energy", "initial_soc", false, 0, 1))
      es.initial_soc = *v;
  }
}

Constellation build(const toml::table& root, const std::string& file) {
  Checker c(file);
  Constellation out;
  out.file = file;
  c.only_keys(root, "",
              {"name", "satellite", "job", "storage", "caf", "orbit", "links", "energy",
               "ground_station", "security"});
  check_reserved(c, root);
  const int root_line = 1;

  if (auto name = c.string(root, root_line, "", "name", true)) {
    if (!valid_id(*name))
      c.add(line_of(*root.get("name")), "name",
            "'" + *name + "' is not a valid name (1-64 of A-Z a-z 0-9 - _ .)");
    out.name = *name;
  }

  // [[satellite]]; their `slot` keys are checked with [orbit], below.
  std::vector<const toml::node*> slot_nodes;
  const toml::node* sats = root.get("satellite");
  if (!sats) {
    c.add(root_line, "satellite", "missing required key: declare at least one [[satellite]]");
  } else if (!sats->is_array() || !sats->as_array()->is_array_of_tables()) {
    c.add(line_of(*sats), "satellite",
          "expected an array of tables ([[satellite]] sections), got " + type_name(*sats));
  } else {
    std::map<std::string, int> id_lines;
    std::map<std::string, int> address_lines;
    const auto& arr = *sats->as_array();
    for (size_t i = 0; i < arr.size(); ++i) {
      const auto& t = *arr[i].as_table();
      const std::string path = "satellite[" + std::to_string(i + 1) + "]";
      const int tl = line_of(t);
      c.only_keys(t, path, {"id", "host", "port", "data_dir", "slot"});
      SatelliteConfig s;
      s.line = tl;
      auto id = c.string(t, tl, path, "id", true);
      auto host = c.string(t, tl, path, "host", true);
      auto port = c.integer(t, tl, path, "port", true, 1, 65535);
      auto dir = c.string(t, tl, path, "data_dir", false);
      if (id) {
        const int l = line_of(*t.get("id"));
        if (!valid_id(*id)) {
          c.add(l, path + ".id",
                "'" + *id + "' is not a valid satellite id (1-64 of A-Z a-z 0-9 - _ .)");
        } else if (auto [it, fresh] = id_lines.emplace(*id, l); !fresh) {
          c.add(l, path + ".id",
                "duplicate satellite id '" + *id + "' (first declared on line " +
                    std::to_string(it->second) + ")");
        }
        s.id = *id;
      }
      if (host) {
        if (host->empty())
          c.add(line_of(*t.get("host")), path + ".host", "host must not be empty");
        s.host = *host;
      }
      if (port)
        s.port = static_cast<uint16_t>(*port);
      if (host && port && !host->empty()) {
        const int l = line_of(*t.get("port"));
        if (auto [it, fresh] = address_lines.emplace(s.address(), l); !fresh)
          c.add(l, path + ".port",
                "duplicate port " + std::to_string(*port) + " on host " + *host +
                    " (already used on line " + std::to_string(it->second) + ")");
      }
      if (dir)
        s.data_dir = *dir;
      out.satellites.push_back(std::move(s));
      slot_nodes.push_back(t.get("slot"));
    }
    if (arr.empty())
      c.add(line_of(*sats), "satellite", "declare at least one [[satellite]]");
  }

  // [job]
  if (const toml::table* job = c.table(root, "", "job")) {
    const int tl = line_of(*job);
    c.only_keys(*job, "job", {"scheduler", "parameter_server"});
    auto check_ref = [&](std::string_view key, std::string& dst) {
      if (auto v = c.string(*job, tl, "job", key, true)) {
        dst = *v;
        if (!out.find(*v) && !out.satellites.empty())
          c.add(line_of(*job->get(key)), "job." + std::string(key),
                "'" + *v + "' is not a satellite of this constellation");
      }
    };
    check_ref("scheduler", out.job.scheduler);
    check_ref("parameter_server", out.job.parameter_server);
  } else if (!root.get("job")) {
    c.add(root_line, "job", "missing required section [job] (scheduler, parameter_server)");
  }

  // [storage]
  out.storage.root = "orbitrain-data/" + out.name;
  if (const toml::table* st = c.table(root, "", "storage")) {
    const int tl = line_of(*st);
    c.only_keys(*st, "storage", {"root", "replicas"});
    if (auto r = c.string(*st, tl, "storage", "root", false))
      out.storage.root = *r;
    const int64_t max_r = std::max<int64_t>(1, static_cast<int64_t>(out.satellites.size()));
    if (auto r = c.integer(*st, tl, "storage", "replicas", false, 1, max_r))
      out.storage.replicas = static_cast<int>(*r);
  } else {
    out.storage.replicas =
        std::min<int>(2, std::max<int>(1, static_cast<int>(out.satellites.size())));
  }
  for (auto& s : out.satellites)
    if (s.data_dir.empty())
      s.data_dir = out.storage.root + "/" + s.id;

  // [caf]
  if (const toml::table* caf = c.table(root, "", "caf")) {
    const int tl = line_of(*caf);
    c.only_keys(*caf, "caf", {"scheduler_threads", "heartbeat_interval", "connection_timeout"});
    if (auto n = c.integer(*caf, tl, "caf", "scheduler_threads", false, 1, 256))
      out.caf.scheduler_threads = static_cast<int>(*n);
    out.caf.heartbeat_interval = c.duration(*caf, tl, "caf", "heartbeat_interval");
    out.caf.connection_timeout = c.duration(*caf, tl, "caf", "connection_timeout");
    if (out.caf.heartbeat_interval && out.caf.connection_timeout &&
        *out.caf.connection_timeout <= *out.caf.heartbeat_interval)
      c.add(line_of(*caf->get("connection_timeout")), "caf.connection_timeout",
            "must be longer than caf.heartbeat_interval, or every peer would time out");
  }

  check_orbit(c, root, out, slot_nodes);

  auto issues = c.take();
  if (!issues.empty()) {
    std::stable_sort(issues.begin(), issues.end(),
                     [](const ConfigIssue& a, const ConfigIssue& b) { return a.line < b.line; });
    throw ConfigError(std::move(issues));
  }
  return out;
}

} // namespace

Constellation parse_constellation(std::string_view text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    throw ConfigError({ConfigIssue{file, static_cast<int>(e.source().begin.line), "",
                                   "TOML syntax error: " + std::string(e.description())}});
  }
  return build(root, file);
}

Constellation load_constellation(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ConfigError({ConfigIssue{path, 0, "", "cannot open the constellation file"}});
  std::ostringstream buf;
  buf << in.rdbuf();
  return parse_constellation(buf.str(), path);
}

} // namespace orbitrain
