// The ground station's view of a constellation: a client actor system that
// connects to satellites, spawns actors on them remotely and exchanges
// envelopes with those actors, every step bounded by a timeout, so no
// command hangs on a dead or silent satellite.
#pragma once

#include "core/config.hpp"
#include "core/result.hpp"
#include "schemas/messages.hpp"

#include <caf/actor.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace caf {
class actor_system;
}

namespace orbitrain {

class orbitrain_config;

/// What a status probe learned of one satellite.
struct SatelliteProbe {
  std::string id;
  std::string address;
  bool up = false;
  std::string error;        // why it is unreachable (when !up)
  msg::NodeStatus status;   // when up
  double round_trip_ms = 0; // connect + spawn + probe, when up
};

class GroundStation {
public:
  explicit GroundStation(const Constellation& constellation);
  ~GroundStation();
  GroundStation(const GroundStation&) = delete;
  GroundStation& operator=(const GroundStation&) = delete;

  caf::actor_system& system();
  const Constellation& constellation() const { return constellation_; }

  /// Connects to `sat` and spawns an actor of registered type `type` there.
  Result<caf::actor> spawn_on(const SatelliteConfig& sat, const std::string& type,
                              std::chrono::milliseconds timeout);

  /// Spawns an actor of `type` on every satellite at once; one result per
  /// satellite, in file order, within `timeout` plus a small margin.
  std::vector<Result<caf::actor>> spawn_on_all(const std::string& type,
                                               std::chrono::milliseconds timeout);

  /// Sends an envelope with `body` to `actor` and returns the decoded reply.
  Result<msg::Envelope> ask(const caf::actor& actor, msg::Body body,
                            std::chrono::milliseconds timeout);

  /// Sends raw bytes (for tests of malformed input) and decodes the reply.
  Result<msg::Envelope> ask_raw(const caf::actor& actor, std::vector<uint8_t> bytes,
                                std::chrono::milliseconds timeout);

  /// Probes every satellite at once (connect, spawn a probe, ask it); the
  /// whole call returns within `timeout` plus a small margin.
  std::vector<SatelliteProbe> probe_all(std::chrono::milliseconds timeout);

private:
  Constellation constellation_;
  std::unique_ptr<orbitrain_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
};

} // namespace orbitrain
