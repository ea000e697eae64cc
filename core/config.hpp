// The constellation file: one TOML file that describes a constellation, its
// satellites (id, host, port, Walker slot), where a job's scheduler and
// parameter server run, storage and CAF settings, the orbit (Walker pattern,
// altitude, epoch, time scale), the link model, the ground stations and the
// power model; [security] is reserved for a later layer. docs/configuration.md documents every
// key; configs/reference.toml is the fully commented example.
//
// Loading is strict: an unknown key, a wrong type, a value out of range, a
// duplicate satellite id or address, or a missing required key is an error
// that names the file, the line and the key. All errors of a file are
// collected, so a user fixes them in one pass.
#pragma once

#include "core/walker.hpp"

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
  int slot = -1;        // its Walker slot (plane * per_plane + index); -1 without [orbit]

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

/// [orbit]: the Walker pattern every satellite of the file sits in (a slot
/// each; the slots no satellite of the file holds are relay-only satellites)
/// and the simulated clock: sim time = epoch + wall time since start x
/// time_scale.
struct OrbitSettings {
  WalkerDelta walker;            // pattern and altitude
  double epoch_unix = 946728000; // UTC seconds since 1970; default J2000 (2000-01-01T12:00:00Z)
  double time_scale = 1;         // simulated seconds per wall second
  bool j2 = false;               // secular J2 drift of the node and the argument of latitude
  /// The wall-clock instant (UTC seconds since 1970) at which simulated time
  /// is at the epoch. Every process of the constellation reads it from the
  /// same file, so all agree on the simulated time. Unset: the epoch itself
  /// (at time scale 1 the simulation then runs on real UTC time).
  std::optional<double> start_unix;
  double start() const { return start_unix ? *start_unix : epoch_unix; }
};

/// [links]: the inter-satellite and ground link model.
struct LinkSettings {
  double isl_bandwidth_mbps = 100;   // per inter-satellite link
  double max_range_km = 5000;        // an ISL is down beyond this distance
  double min_altitude_km = 80;       // line of sight must clear this altitude
  double ground_bandwidth_mbps = 50; // ground station <-> satellite
  double queue_limit_mib = 64;       // messages a link layer may hold while no route exists
};

/// One [[ground_station]].
struct GroundStationConfig {
  std::string name; // unique, same characters as a satellite id
  double lat_deg = 0;
  double lon_deg = 0;
  double min_elevation_deg = 25; // contact while the satellite is at least this high
  int line = 0;
};

/// [energy]: the power model of every satellite.
struct EnergySettings {
  double solar_w = 120;            // panel output in sunlight
  double battery_wh = 80;          // capacity
  double depth_of_discharge = 0.4; // fraction of the capacity that may be used: SoC floor 1 - this
  double idle_w = 20;              // draw with no core busy
  double per_core_w = 10;          // extra draw per busy core
  double initial_soc = 1;          // state of charge at the epoch, fraction of capacity
};

struct Constellation {
  std::string file; // path it was loaded from ("<string>" when parsed from text)
  std::string name;
  std::vector<SatelliteConfig> satellites;
  JobPlacement job;
  StorageSettings storage;
  CafSettings caf;
  std::optional<OrbitSettings> orbit; // none: no orbit model (zero latency, always sunlit, contact)
  LinkSettings links;
  EnergySettings energy;
  std::vector<GroundStationConfig> ground_stations; // only with [orbit]

  /// The satellite with `id`, or nullptr.
  const SatelliteConfig* find(std::string_view id) const;
};

/// Reads and validates the file at `path`; throws ConfigError.
Constellation load_constellation(const std::string& path);

/// Validates `text` as if read from `file`; throws ConfigError.
Constellation parse_constellation(std::string_view text, const std::string& file);

/// Parses an ISO-8601 UTC time "2026-03-20T03:06:00Z" (seconds may have a
/// fraction; "Z" or "+00:00") into seconds since 1970-01-01T00:00:00Z.
std::optional<double> parse_utc_time(std::string_view text);

/// Formats seconds since 1970 as "2026-03-20T03:06:00Z" (whole seconds).
std::string format_utc_time(double unix_seconds);

/// Parses "250ms", "2s", "1.5s", "3min" or "1h"; nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

} // namespace orbitrain
