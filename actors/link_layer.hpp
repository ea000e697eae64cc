// The link layer and the orbit service of a satellite node: how the runtime
// obeys the constellation model (orbit/model.hpp) when the file has [orbit].
//
// Every node with an orbit model runs one `orbit_service` actor. It owns the
// node's ConstellationModel, its Battery and its SimClock (sim time = epoch
// + (wall - [orbit] start) x time_scale; every process reads `start` from
// the same file, so all agree), and
//
//   - every `tick` (100 ms of wall time) moves the model to the simulated
//     now, charges the battery for the simulated time that passed with the
//     node's busy cores (sampled: process CPU seconds / wall seconds), and
//     publishes a snapshot (position, sunlight, charge, contact, links, link
//     counters) that probes and workers read without asking the actor;
//   - is the node's end of every inter-satellite link. link_send() hands it
//     a message for an actor on satellite X; it queues the message per
//     destination satellite and delivers it (as if sent by the original
//     sender, so replies and current_sender() work) once the route's light
//     time plus the transmission time (bytes / the slowest bandwidth on the
//     route, after the previous message to X has been transmitted) has
//     passed in simulated time. While there is no route to X the messages
//     wait (in order); a message that would take the held bytes over
//     [links] queue_limit_mib is refused: logged, counted (NodeStatus
//     linkDropped) and answered to its sender with an ErrorReply
//     "link_overflow". Delivery to X is in order.
//
// Simplifications (docs/architecture.md): the route and its delay are taken
// when a message leaves the queue, not re-checked while it is in flight; a
// destination satellite's queue models the route's bottleneck, not every
// physical link (two flows sharing an ISL do not slow each other).
//
// Chunk fetches between satellites (a worker's windows held elsewhere, the
// parameter server's validation data) pass it too: fetch_chunk() sends the
// request through the requester's link layer, and a store actor answers a
// request that came that way through its own (store_actor.hpp).
//
// Without [orbit] there is no service and link_send() is a plain send.
#pragma once

#include "actors/wire_message.hpp"
#include "core/config.hpp"

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace orbitrain {

/// What the orbit service last computed, for synchronous readers.
struct OrbitSnapshot {
  double sim_time_s = 0;
  double lat_deg = 0, lon_deg = 0, alt_km = 0;
  bool sunlit = true;
  double state_of_charge = 1;
  bool in_contact = false;
  uint32_t links_up = 0;
  uint64_t held = 0, dropped = 0, delivered = 0;
  uint64_t delivered_bytes = 0; // over ISLs, since the node started
  double min_soc = 1;           // lowest state of charge since the node started
  double below_floor_s = 0;     // simulated seconds spent below the depth-of-discharge floor
};

/// A node's orbit state shared between its actors (owned by the node's
/// actor system config). The model itself lives in the service actor.
class NodeOrbit {
public:
  NodeOrbit(const Constellation& file, std::string node_id);

  const Constellation& file() const { return file_; }
  const std::string& node_id() const { return node_id_; }
  int slot() const { return slot_; }
  /// The Walker slot of satellite `id`, or -1.
  int slot_of(const std::string& id) const;

  OrbitSnapshot snapshot() const;
  void publish(const OrbitSnapshot& s);
  /// Updates only the link counters of the snapshot.
  void publish_counters(uint64_t held, uint64_t dropped, uint64_t delivered,
                        uint64_t delivered_bytes);

  /// The service actor; set by the node before it listens.
  caf::actor service;

private:
  Constellation file_;
  std::string node_id_;
  int slot_ = -1;
  std::unordered_map<std::string, int> slots_;
  mutable std::mutex m_;
  OrbitSnapshot snap_;
};

/// The node's orbit service (spawn one per node, when the file has [orbit]).
caf::behavior orbit_service_actor(caf::event_based_actor* self, std::shared_ptr<NodeOrbit> orbit);

/// Sends `w` from `self` to `dest`, an actor on satellite `dest_satellite`,
/// through the node's link layer: delayed and held as the model says. A
/// plain send without an orbit model or when the destination is this node.
void link_send(caf::event_based_actor* self, const caf::actor& dest,
               const std::string& dest_satellite, wire w);
/// The same for a message holding one wire that is sent to several actors:
/// a direct send shares it (no copy).
void link_send(caf::event_based_actor* self, const caf::actor& dest,
               const std::string& dest_satellite, const caf::message& one_wire);

/// A store actor on another satellite (spawned there as "store").
struct PeerStore {
  caf::actor actor;
  std::string satellite;
};

/// The verified bytes of chunk `h` from the first of `peers` that has it,
/// asked one after the other, each given `timeout`. Blocking: for a compute
/// thread, the parameter server's validation reads, or a test. With an orbit
/// model the request leaves through this node's link layer and the reply
/// comes back through the peer's (each delayed by its route, held while
/// there is none); without, plain requests.
Result<std::vector<uint8_t>>
fetch_chunk(caf::actor_system& sys, const std::vector<PeerStore>& peers, const msg::Hash& h,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Tells the node's orbit service that this node's worker keeps `cores`
/// cores busy (0: idle). While a worker reports, the battery is drawn for
/// what it reports; with none, for the CPU use the service samples (process
/// CPU seconds / wall seconds). Nothing without an orbit model.
void report_busy(caf::event_based_actor* self, int cores);

/// Remotely spawnable as "link_test": lets a test (or an experiment) drive
/// the link layer of the node it runs on.
///   (peer_atom, host, port) -> bool          connect this node to another
///   (relay_atom, dest, dest_satellite, wire) link_send(dest, ...)
///   (sink_atom, actor)                       forward every wire received to it
///   (link_down_atom, satellite, bool) -> bool force the route to a
///                                            satellite down (true) or back
///   (fetch_atom, store, satellite, wire)     fetch_chunk() the chunk the
///                                            wire's ChunkRequest names from
///                                            that store actor; the chunk (or
///                                            an ErrorReply) to the sink
///   wire                                     to the sink
caf::behavior link_test_actor(caf::event_based_actor* self);

} // namespace orbitrain
