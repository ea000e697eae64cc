// The constellation model at one simulated instant: where every slot of the
// Walker pattern is, which +Grid inter-satellite links (ISLs) are up and how
// long light takes over them, which satellites each ground station sees, and
// the shortest-latency routes the runtime needs. Plain C++, no CAF.
//
// Every slot of the pattern is a satellite that relays traffic; the
// satellites of the constellation file are the slots that also run an
// orbitrain node. The runtime owns one model per process and calls
//
//   model.set_targets({my_slot, ps_slot, scheduler_slot});  // once
//   model.update(clock.now());                               // every step
//   auto r = model.route(my_slot, peer_slot);                // nullopt: hold the message
//   double d = model.delay(*r, bytes);                       // simulated seconds
//
// update() recomputes positions, links, contacts and one shortest-path tree
// per target and per ground station (Dijkstra, binary heap); a route with a
// target at either end is read from its tree, any other route costs one
// Dijkstra, cached until the next update(). The model is not thread-safe:
// const queries fill that cache, so one owner (an actor) uses it.
//
// Message delay (see delay()): cut-through by default, i.e. the message is
// pipelined in packets, so it pays each hop's light time once plus its size
// over the slowest link of the route; store-and-forward (every hop receives
// the whole message before sending it on) is available for comparison.
#pragma once

#include "core/config.hpp"
#include "orbit/energy.hpp"
#include "orbit/orbit.hpp"
#include "orbit/windows.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace orbitrain::orbit {

inline constexpr double infinity = std::numeric_limits<double>::infinity();

struct GroundStation {
  std::string name;
  double lat_deg = 0, lon_deg = 0;
  double min_elevation_deg = 25;
};

struct LinkModel {
  double isl_bandwidth_bps = 100e6;
  double ground_bandwidth_bps = 50e6;
  double max_range_m = 5000e3;
  double min_altitude_m = 80e3; // line of sight must clear this altitude
};

/// Everything the model needs; model_spec() builds it from a constellation file.
struct ModelSpec {
  WalkerDelta walker;
  bool j2 = false;
  double epoch_unix = 946728000; // UTC seconds since 1970 at t = 0 (default J2000)
  LinkModel links;
  std::vector<GroundStation> stations;
};

/// The model of a constellation file; the file must have an [orbit] section
/// (throws std::invalid_argument otherwise).
ModelSpec model_spec(const orbitrain::Constellation& file);

/// One +Grid ISL (a < b) at the model's time.
struct Link {
  int a = 0, b = 0;
  bool up = false; // line of sight above the minimum altitude and within range
  double distance_m = 0;
  double latency_s = 0; // distance / c
};

/// A route through the constellation at the model's time.
struct Route {
  std::vector<int> path; // slots, source first, destination last
  double latency_s = 0;  // light time over every hop (and the ground hop, if any)
  int station = -1;      // a ground route: the station it starts at; -1 otherwise
  double uplink_s = 0;   // the ground hop's share of latency_s
  /// Links crossed, counting the ground hop.
  int hops() const { return static_cast<int>(path.size()) - 1 + (station >= 0 ? 1 : 0); }
};

enum class Forwarding { cut_through, store_and_forward };

/// A satellite a ground station sees at the model's time.
struct Contact {
  int slot = 0;
  double elevation_deg = 0;
  double latency_s = 0; // slant range / c
};

class ConstellationModel {
public:
  explicit ConstellationModel(ModelSpec spec);

  const ModelSpec& spec() const { return spec_; }
  const Walker& walker() const { return walker_; }
  int size() const { return walker_.size(); }
  int station_count() const { return static_cast<int>(spec_.stations.size()); }
  /// Index of the station called `name`, or -1.
  int station_index(const std::string& name) const;
  /// Greenwich sidereal angle at the epoch (radians).
  double gmst0() const { return gmst0_; }

  /// Slots whose route trees update() keeps (this node's own, the parameter
  /// server's, the scheduler's ...). Takes effect at the next update().
  void set_targets(std::vector<int> slots);
  const std::vector<int>& targets() const { return targets_; }

  /// Moves the model to simulated time `t` (seconds since the epoch).
  void update(double t);
  double time() const { return t_; }

  // ---- state at time() -----------------------------------------------------
  const Vec3& position(int slot) const { return pos_[static_cast<size_t>(slot)]; }
  Geodetic subpoint(int slot) const;
  bool sunlit(int slot) const { return sunlit_[static_cast<size_t>(slot)] != 0; }
  /// Unit vector towards the Sun.
  const Vec3& sun() const { return sun_; }
  /// Every +Grid link, up or down, in a fixed order.
  const std::vector<Link>& links() const { return links_; }
  int links_up() const { return links_up_; }
  /// Satellites above station `g`'s minimum elevation.
  const std::vector<Contact>& contacts(int g) const { return contacts_[static_cast<size_t>(g)]; }
  /// Whether any ground station sees `slot` (for load reports).
  bool in_contact(int slot) const { return in_contact_[static_cast<size_t>(slot)] != 0; }

  /// The shortest-latency route from slot `from` to slot `to` over the links
  /// that are up; nullopt when there is none now (the runtime holds the
  /// message). from == to gives a zero-latency route of one slot.
  std::optional<Route> route(int from, int to) const;
  /// The first hop of route(from, to) without building the path: the slot
  /// after `from`; -1 when there is no route or from == to.
  int next_hop(int from, int to) const;
  /// Light time of route(from, to); infinity when there is none.
  double latency(int from, int to) const;
  bool reachable(int from, int to) const { return latency(from, to) < infinity; }

  /// The shortest route from ground station `g` up to slot `to`, entering
  /// through any satellite in contact; nullopt when there is none. The same
  /// path reversed is the way down.
  std::optional<Route> ground_route(int g, int to) const;
  double ground_latency(int g, int to) const;

  /// Simulated seconds a message of `bytes` takes along `r`: light time plus
  /// transmission (see the file comment). Bandwidths from the spec.
  double delay(const Route& r, uint64_t bytes, Forwarding f = Forwarding::cut_through) const;
  /// delay() of route(from, to); nullopt when there is no route now.
  std::optional<double> message_delay(int from, int to, uint64_t bytes) const;

  /// Shortest latency between every pair of slots (row-major size() x
  /// size(), infinity where no route): one Dijkstra per slot.
  std::vector<double> all_pairs_latency() const;

  // ---- over time (analytic orbits; independent of update()) ---------------
  Vec3 position_at(int slot, double t) const { return walker_.position(slot, t); }
  Vec3 sun_at(double t) const { return sun_direction(spec_.epoch_unix + t); }
  bool sunlit_at(int slot, double t) const;
  double elevation_at(int g, int slot, double t) const;
  /// Windows within [t0, t1] when `slot` is above station `g`'s minimum
  /// elevation (sampled every `step` s, edges refined to 1 ms).
  std::vector<Window> contact_windows(int g, int slot, double t0, double t1,
                                      double step = 10) const;
  /// Windows within [t0, t1] when `slot` is in the Earth's shadow.
  std::vector<Window> eclipses(int slot, double t0, double t1, double step = 30) const;

  /// Would `cores` busy on `slot` for `duration` seconds from time() take
  /// `battery` below its depth-of-discharge limit (with the slot's coming
  /// eclipses)? The scheduler's question before it assigns work.
  bool would_breach(const Battery& battery, int slot, int cores, double duration) const;

private:
  // A shortest-path tree: dist[v] is the light time from v to the root (or
  // from the station, for a station tree), next[v] the neighbour of v one hop
  // closer to it (-1 at the root, at a station tree's entry satellites, and
  // where unreachable).
  struct Tree {
    std::vector<double> dist;
    std::vector<int> next;
  };
  void dijkstra(Tree& tree, const std::vector<std::pair<int, double>>& sources) const;
  const Tree& tree_from(int slot) const;
  const Tree* kept_tree(int slot) const;

  ModelSpec spec_;
  Walker walker_;
  double gmst0_;
  double t_ = 0;
  std::vector<Vec3> pos_;
  std::vector<char> sunlit_;
  Vec3 sun_;
  std::vector<Link> links_;
  int links_up_ = 0;
  // Links that are up, as adjacency lists in CSR form.
  std::vector<int> adj_begin_, adj_to_;
  std::vector<double> adj_latency_;
  std::vector<std::vector<Contact>> contacts_;
  std::vector<char> in_contact_;
  std::vector<int> targets_;
  std::vector<Tree> target_trees_;              // parallel to targets_
  std::vector<Tree> station_trees_;             // one per station
  mutable std::unordered_map<int, Tree> cache_; // other roots, until the next update()
  mutable std::vector<std::pair<double, int>> heap_;
};

} // namespace orbitrain::orbit
