// Implementation of model.hpp.
#include "orbit/model.hpp"

#include <algorithm>
#include <stdexcept>

namespace orbitrain::orbit {

ModelSpec model_spec(const orbitrain::Constellation& file) {
  if (!file.orbit)
    throw std::invalid_argument(file.file + ": no [orbit] section: the constellation has no " +
                                "orbit model");
  ModelSpec s;
  s.walker = file.orbit->walker;
  s.j2 = file.orbit->j2;
  s.epoch_unix = file.orbit->epoch_unix;
  s.links.isl_bandwidth_bps = file.links.isl_bandwidth_mbps * 1e6;
  s.links.ground_bandwidth_bps = file.links.ground_bandwidth_mbps * 1e6;
  s.links.max_range_m = file.links.max_range_km * 1e3;
  s.links.min_altitude_m = file.links.min_altitude_km * 1e3;
  for (const auto& g : file.ground_stations)
    s.stations.push_back({g.name, g.lat_deg, g.lon_deg, g.min_elevation_deg});
  return s;
}

ConstellationModel::ConstellationModel(ModelSpec spec)
    : spec_(std::move(spec)), walker_(spec_.walker, spec_.j2), gmst0_(gmst(spec_.epoch_unix)) {
  const auto n = static_cast<size_t>(walker_.size());
  pos_.resize(n);
  sunlit_.resize(n);
  in_contact_.resize(n);
  for (auto [a, b] : walker_.grid_links())
    links_.push_back(Link{a, b, false, 0, 0});
  contacts_.resize(spec_.stations.size());
  station_trees_.resize(spec_.stations.size());
  update(0);
}

int ConstellationModel::station_index(const std::string& name) const {
  for (size_t i = 0; i < spec_.stations.size(); ++i)
    if (spec_.stations[i].name == name)
      return static_cast<int>(i);
  return -1;
}

void ConstellationModel::set_targets(std::vector<int> slots) {
  for (int s : slots)
    if (s < 0 || s >= size())
      throw std::out_of_range("target slot " + std::to_string(s) + " is not a slot of the model");
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  targets_ = std::move(slots);
  target_trees_.assign(targets_.size(), Tree{});
}

void ConstellationModel::update(double t) {
  t_ = t;
  const int n = size();
  const auto un = static_cast<size_t>(n);
  sun_ = sun_at(t);
  for (size_t s = 0; s < un; ++s) {
    pos_[s] = walker_.position(static_cast<int>(s), t);
    sunlit_[s] = in_eclipse(pos_[s], sun_) ? 0 : 1;
  }

  // ISLs, then the adjacency of those that are up (CSR: count, prefix, fill).
  links_up_ = 0;
  adj_begin_.assign(un + 1, 0);
  for (auto& l : links_) {
    const Vec3& a = pos_[static_cast<size_t>(l.a)];
    const Vec3& b = pos_[static_cast<size_t>(l.b)];
    l.distance_m = (a - b).norm();
    l.latency_s = l.distance_m / speed_of_light;
    l.up =
        l.distance_m <= spec_.links.max_range_m && line_of_sight(a, b, spec_.links.min_altitude_m);
    if (l.up) {
      ++links_up_;
      ++adj_begin_[static_cast<size_t>(l.a) + 1];
      ++adj_begin_[static_cast<size_t>(l.b) + 1];
    }
  }
  for (size_t s = 0; s < un; ++s)
    adj_begin_[s + 1] += adj_begin_[s];
  adj_to_.resize(static_cast<size_t>(2 * links_up_));
  adj_latency_.resize(adj_to_.size());
  std::vector<int> fill(adj_begin_.begin(), adj_begin_.end() - 1);
  for (const auto& l : links_) {
    if (!l.up)
      continue;
    auto put = [&](int from, int to) {
      const auto at = static_cast<size_t>(fill[static_cast<size_t>(from)]++);
      adj_to_[at] = to;
      adj_latency_[at] = l.latency_s;
    };
    put(l.a, l.b);
    put(l.b, l.a);
  }

  // Ground contacts and the station trees.
  std::vector<std::pair<int, double>> sources;
  std::fill(in_contact_.begin(), in_contact_.end(), 0);
  for (size_t g = 0; g < spec_.stations.size(); ++g) {
    const auto& st = spec_.stations[g];
    const Vec3 where = station_position(st.lat_deg, st.lon_deg, t, gmst0_);
    const Vec3 up = where * (1 / earth_radius);
    const double sin_min = std::sin(st.min_elevation_deg * pi / 180);
    auto& cs = contacts_[g];
    cs.clear();
    sources.clear();
    for (int s = 0; s < n; ++s) {
      const Vec3 d = pos_[static_cast<size_t>(s)] - where;
      const double range = d.norm();
      const double sin_el = d.dot(up) / range;
      if (sin_el >= sin_min) {
        cs.push_back({s, std::asin(sin_el) * 180 / pi, range / speed_of_light});
        in_contact_[static_cast<size_t>(s)] = 1;
        sources.emplace_back(s, range / speed_of_light);
      }
    }
    dijkstra(station_trees_[g], sources);
  }
  for (size_t i = 0; i < targets_.size(); ++i)
    dijkstra(target_trees_[i], {{targets_[i], 0.0}});
  cache_.clear();
}

void ConstellationModel::dijkstra(Tree& tree,
                                  const std::vector<std::pair<int, double>>& sources) const {
  const auto n = static_cast<size_t>(size());
  tree.dist.assign(n, infinity);
  tree.next.assign(n, -1);
  heap_.clear();
  // A binary min-heap on (distance, slot) with lazy deletion: a slot may be
  // pushed again with a shorter distance; stale entries are skipped.
  auto cmp = [](const std::pair<double, int>& x, const std::pair<double, int>& y) {
    return x.first > y.first;
  };
  for (auto [s, d] : sources) {
    if (d < tree.dist[static_cast<size_t>(s)]) {
      tree.dist[static_cast<size_t>(s)] = d;
      heap_.emplace_back(d, s);
      std::push_heap(heap_.begin(), heap_.end(), cmp);
    }
  }
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), cmp);
    const auto [d, v] = heap_.back();
    heap_.pop_back();
    const auto uv = static_cast<size_t>(v);
    if (d > tree.dist[uv])
      continue;
    for (int e = adj_begin_[uv]; e < adj_begin_[uv + 1]; ++e) {
      const auto ue = static_cast<size_t>(e);
      const int w = adj_to_[ue];
      const auto uw = static_cast<size_t>(w);
      const double nd = d + adj_latency_[ue];
      if (nd < tree.dist[uw]) {
        tree.dist[uw] = nd;
        tree.next[uw] = v;
        heap_.emplace_back(nd, w);
        std::push_heap(heap_.begin(), heap_.end(), cmp);
      }
    }
  }
}

const ConstellationModel::Tree* ConstellationModel::kept_tree(int slot) const {
  auto it = std::lower_bound(targets_.begin(), targets_.end(), slot);
  if (it != targets_.end() && *it == slot)
    return &target_trees_[static_cast<size_t>(it - targets_.begin())];
  auto c = cache_.find(slot);
  return c == cache_.end() ? nullptr : &c->second;
}

const ConstellationModel::Tree& ConstellationModel::tree_from(int slot) const {
  if (const Tree* t = kept_tree(slot))
    return *t;
  Tree& t = cache_[slot];
  dijkstra(t, {{slot, 0.0}});
  return t;
}

Geodetic ConstellationModel::subpoint(int slot) const {
  return orbit::subpoint(position(slot), t_, gmst0_);
}

std::optional<Route> ConstellationModel::route(int from, int to) const {
  if (from < 0 || to < 0 || from >= size() || to >= size())
    throw std::out_of_range("route: slot out of range");
  Route r;
  if (const Tree* at_to = kept_tree(to); at_to || !kept_tree(from)) {
    // Walk from `from` towards the root `to`.
    const Tree& tree = at_to ? *at_to : tree_from(to);
    const double d = tree.dist[static_cast<size_t>(from)];
    if (d == infinity)
      return std::nullopt;
    r.latency_s = d;
    for (int v = from; v != -1; v = tree.next[static_cast<size_t>(v)])
      r.path.push_back(v);
    return r;
  }
  // Walk from `to` towards the root `from`, then reverse.
  const Tree& tree = *kept_tree(from);
  const double d = tree.dist[static_cast<size_t>(to)];
  if (d == infinity)
    return std::nullopt;
  r.latency_s = d;
  for (int v = to; v != -1; v = tree.next[static_cast<size_t>(v)])
    r.path.push_back(v);
  std::reverse(r.path.begin(), r.path.end());
  return r;
}

int ConstellationModel::next_hop(int from, int to) const {
  if (from == to)
    return -1;
  if (const Tree* at_to = kept_tree(to); at_to || !kept_tree(from))
    return (at_to ? *at_to : tree_from(to)).next[static_cast<size_t>(from)];
  auto r = route(from, to); // only `from`'s tree is kept: walk it back from `to`
  return r ? r->path[1] : -1;
}

double ConstellationModel::latency(int from, int to) const {
  if (from < 0 || to < 0 || from >= size() || to >= size())
    throw std::out_of_range("latency: slot out of range");
  if (const Tree* t = kept_tree(to))
    return t->dist[static_cast<size_t>(from)];
  if (const Tree* t = kept_tree(from))
    return t->dist[static_cast<size_t>(to)];
  return tree_from(to).dist[static_cast<size_t>(from)];
}

std::optional<Route> ConstellationModel::ground_route(int g, int to) const {
  const Tree& tree = station_trees_.at(static_cast<size_t>(g));
  const double d = tree.dist.at(static_cast<size_t>(to));
  if (d == infinity)
    return std::nullopt;
  Route r;
  r.station = g;
  r.latency_s = d;
  for (int v = to; v != -1; v = tree.next[static_cast<size_t>(v)])
    r.path.push_back(v);
  std::reverse(r.path.begin(), r.path.end());
  for (const auto& c : contacts_[static_cast<size_t>(g)])
    if (c.slot == r.path.front())
      r.uplink_s = c.latency_s;
  return r;
}

double ConstellationModel::ground_latency(int g, int to) const {
  return station_trees_.at(static_cast<size_t>(g)).dist.at(static_cast<size_t>(to));
}

double ConstellationModel::delay(const Route& r, uint64_t bytes, Forwarding f) const {
  const double bits = 8.0 * static_cast<double>(bytes);
  const int isl_hops = static_cast<int>(r.path.size()) - 1;
  const double isl = spec_.links.isl_bandwidth_bps, ground = spec_.links.ground_bandwidth_bps;
  if (f == Forwarding::store_and_forward)
    return r.latency_s + isl_hops * bits / isl + (r.station >= 0 ? bits / ground : 0);
  if (isl_hops == 0 && r.station < 0)
    return 0; // a message to itself
  double slowest = infinity;
  if (isl_hops > 0)
    slowest = isl;
  if (r.station >= 0)
    slowest = std::min(slowest, ground);
  return r.latency_s + bits / slowest;
}

std::optional<double> ConstellationModel::message_delay(int from, int to, uint64_t bytes) const {
  auto r = route(from, to);
  if (!r)
    return std::nullopt;
  return delay(*r, bytes);
}

std::vector<double> ConstellationModel::all_pairs_latency() const {
  const auto n = static_cast<size_t>(size());
  std::vector<double> out(n * n);
  Tree tree;
  for (size_t s = 0; s < n; ++s) {
    dijkstra(tree, {{static_cast<int>(s), 0.0}});
    std::copy(tree.dist.begin(), tree.dist.end(), out.begin() + static_cast<std::ptrdiff_t>(s * n));
  }
  return out;
}

bool ConstellationModel::sunlit_at(int slot, double t) const {
  return !in_eclipse(position_at(slot, t), sun_at(t));
}

double ConstellationModel::elevation_at(int g, int slot, double t) const {
  const auto& st = spec_.stations.at(static_cast<size_t>(g));
  return elevation_deg(position_at(slot, t), st.lat_deg, st.lon_deg, t, gmst0_);
}

std::vector<Window> ConstellationModel::contact_windows(int g, int slot, double t0, double t1,
                                                        double step) const {
  const double min_el = spec_.stations.at(static_cast<size_t>(g)).min_elevation_deg;
  return find_windows([&](double t) { return elevation_at(g, slot, t) >= min_el; }, t0, t1, step);
}

std::vector<Window> ConstellationModel::eclipses(int slot, double t0, double t1,
                                                 double step) const {
  return find_windows([&](double t) { return !sunlit_at(slot, t); }, t0, t1, step);
}

bool ConstellationModel::would_breach(const Battery& battery, int slot, int cores,
                                      double duration) const {
  return orbit::would_breach(battery, t_, duration, cores, eclipses(slot, t_, t_ + duration));
}

} // namespace orbitrain::orbit
