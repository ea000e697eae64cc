// Building CAF actor systems for orbitrain. make_caf_config() applies the
// constellation file's [caf] settings, loads the middleman and announces the
// project's message types; a satellite's config also carries its identity,
// which the actors spawned on it read through node_context().
#pragma once

#include "core/config.hpp"

#include <caf/actor_system_config.hpp>
#include <chrono>
#include <memory>
#include <string>

namespace caf {
class actor_system;
}

namespace orbitrain {

class Store;
class NodeOrbit;

/// The actor system config of every orbitrain process.
class orbitrain_config : public caf::actor_system_config {
public:
  std::string node_id = "ground"; // satellite id, or "ground" for clients
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  /// The satellite's store, set by the node once it is open (null on the
  /// ground, and for a moment while a node starts).
  std::shared_ptr<Store> store;
  /// The node's orbit state and link layer; null without [orbit] (and on
  /// the ground): then link_send() is a plain send.
  std::shared_ptr<NodeOrbit> orbit;
};

enum class SystemRole {
  satellite, // a node: registers the actor types others may spawn on it
  ground,    // a client: connects and spawns, registers nothing
};

/// A config for an actor system of `role` in `constellation`; `node_id` is
/// the satellite's id (ignored for the ground role).
std::unique_ptr<orbitrain_config> make_caf_config(const Constellation& constellation,
                                                  SystemRole role,
                                                  const std::string& node_id = "ground");

/// The config an actor system was built from.
const orbitrain_config& node_context(caf::actor_system& sys);

} // namespace orbitrain
