// Validating loader for the constellation file (see config.hpp). It walks the
// TOML tree with toml++, which records the source line of every key and
// value, and checks each table against the keys it allows.
#include "core/config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
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
const std::set<std::string_view> reserved_sections = {"orbit", "links", "energy", "ground_station",
                                                      "security"};

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

  // [[satellite]]
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
      c.only_keys(t, path, {"id", "host", "port", "data_dir"});
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
