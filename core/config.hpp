// The constellation file: one TOML file that describes a constellation, its
// satellites (id, host, port), where a job's scheduler and parameter server
// run, storage and CAF settings, and sections later layers fill (orbit, links,
// energy, ground stations, security). docs/configuration.md documents every
// key; configs/reference.toml is the fully commented example.
//
// Loading is strict: an unknown key, a wrong type, a value out of range, a
// duplicate satellite id or address, or a missing required key is an error
// that names the file, the line and the key. All errors of a file are
// collected, so a user fixes them in one pass.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace orbitrain {

/// One problem found in a constellation file.
struct ConfigIssue {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no single line
  std::string key; // dotted path, e.g. "satellite[2].port"
  std::string message;

  /// "file:line: key: message".
  std::string to_string() const;
};

/// Thrown by load_constellation / parse_constellation with every issue found.
class ConfigError : public std::runtime_error {
public:
  explicit ConfigError(std::vector<ConfigIssue> issues);
  const std::vector<ConfigIssue>& issues() const { return issues_; }

private:
  std::vector<ConfigIssue> issues_;
};

struct SatelliteConfig {
  std::string id;   // unique within the constellation: [A-Za-z0-9_.-]{1,64}
  std::string host; // address the satellite listens on and is reached at
  uint16_t port = 0;
  std::string data_dir; // its store; default <storage.root>/<id>
  int line = 0;         // where it is declared in the file

  std::string address() const { return host + ":" + std::to_string(port); }
};

struct JobPlacement {
  std::string scheduler;        // satellite id
  std::string parameter_server; // satellite id
};

struct StorageSettings {
  std::string root; // parent of the satellites' default data dirs
  int replicas = 2; // copies of each chunk, 1..number of satellites
};

/// CAF settings, applied to every actor system orbitrain starts for this
/// constellation (nodes and ground clients alike). Unset means CAF's default.
struct CafSettings {
  std::optional<int> scheduler_threads;                        // scheduler.max-threads
  std::optional<std::chrono::milliseconds> heartbeat_interval; // middleman.heartbeat-interval
  std::optional<std::chrono::milliseconds> connection_timeout; // middleman.connection-timeout
};

struct Constellation {
  std::string file; // path it was loaded from ("<string>" when parsed from text)
  std::string name;
  std::vector<SatelliteConfig> satellites;
  JobPlacement job;
  StorageSettings storage;
  CafSettings caf;

  /// The satellite with `id`, or nullptr.
  const SatelliteConfig* find(std::string_view id) const;
};

/// Reads and validates the file at `path`; throws ConfigError.
Constellation load_constellation(const std::string& path);

/// Validates `text` as if read from `file`; throws ConfigError.
Constellation parse_constellation(std::string_view text, const std::string& file);

/// Parses "250ms", "2s", "1.5s", "3min" or "1h"; nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

} // namespace orbitrain
