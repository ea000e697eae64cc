// The ground station's view of a constellation: a client actor system that
// connects to satellites, spawns actors on them remotely and exchanges
// envelopes with those actors, every step bounded by a timeout, so no
// command hangs on a dead or silent satellite.
#pragma once

#include "core/config.hpp"
#include "core/result.hpp"
#include "schemas/codec.hpp"
#include "schemas/messages.hpp"

#include <caf/actor.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace caf {
class actor_system;
}

namespace orbitrain {

class orbitrain_config;
namespace orbit {
class ConstellationModel;
class SimClock;
} // namespace orbit

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
  Result<msg::Envelope> ask_raw(const caf::actor& actor, msg::Bytes bytes,
                                std::chrono::milliseconds timeout);

  /// Probes every satellite at once (connect, spawn a probe, ask it); the
  /// whole call returns within `timeout` plus a small margin. With a ground
  /// link (below) a probe is sent only once its satellite can be reached
  /// and its reply is held for the way down; a satellite the station cannot
  /// reach within `timeout` is reported as out of contact.
  std::vector<SatelliteProbe> probe_all(std::chrono::milliseconds timeout);

  // ---- the ground link (constellation files with [orbit] and ground stations)
  //
  // The ground station talks to satellite X only through a satellite it
  // sees (above its minimum elevation) and then over the ISLs: a message is
  // held until ConstellationModel::ground_route(station, X) exists and then
  // takes that route's delay (light time + size / bandwidth). The CLI holds
  // its own messages for both directions (a reply's way down is the same
  // route, held on arrival): simpler than relaying through a satellite's
  // link layer, and the same timing.

  /// Uses ground station `name` ("none": talk directly, no ground link).
  /// Default: the file's first station. Fails on an unknown name.
  Result<bool> use_ground_station(const std::string& name);
  /// The station in use; empty when there is no ground link.
  std::string ground_station() const;
  /// Wall seconds from now until a message of `bytes` between the station
  /// and satellite `id` (either way) would arrive: the wait for a route plus
  /// its delay; 0 without a ground link; nullopt when no route opens within
  /// `horizon` of wall time.
  std::optional<double> link_wait(const std::string& id, uint64_t bytes,
                                  std::chrono::milliseconds horizon);
  /// Sleeps for link_wait(); an error when there is no contact in time.
  Result<bool> hold(const std::string& id, uint64_t bytes, std::chrono::milliseconds horizon);

private:
  Constellation constellation_;
  std::unique_ptr<orbitrain_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::mutex link_m_;
  std::unique_ptr<orbit::ConstellationModel> model_; // null: no ground link
  std::unique_ptr<orbit::SimClock> clock_;
  int station_ = -1;
};

} // namespace orbitrain
