// Implementation of link_layer.hpp.
#include "actors/link_layer.hpp"

#include "actors/runtime.hpp"
#include "actors/satellite_actors.hpp"
#include "core/log.hpp"
#include "orbit/clock.hpp"
#include "orbit/energy.hpp"
#include "orbit/model.hpp"
#include "storage/sha256.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <map>
#include <set>

namespace orbitrain {

NodeOrbit::NodeOrbit(const Constellation& file, std::string node_id)
    : file_(file), node_id_(std::move(node_id)) {
  for (const auto& s : file_.satellites) {
    slots_[s.id] = s.slot;
    if (s.id == node_id_)
      slot_ = s.slot;
  }
}

int NodeOrbit::slot_of(const std::string& id) const {
  auto it = slots_.find(id);
  return it == slots_.end() ? -1 : it->second;
}

OrbitSnapshot NodeOrbit::snapshot() const {
  std::lock_guard<std::mutex> lock(m_);
  return snap_;
}

void NodeOrbit::publish(const OrbitSnapshot& s) {
  std::lock_guard<std::mutex> lock(m_);
  snap_ = s;
}

void NodeOrbit::publish_counters(uint64_t held, uint64_t dropped, uint64_t delivered,
                                 uint64_t delivered_bytes) {
  std::lock_guard<std::mutex> lock(m_);
  snap_.held = held;
  snap_.dropped = dropped;
  snap_.delivered = delivered;
  snap_.delivered_bytes = delivered_bytes;
}

namespace {

using steady = std::chrono::steady_clock;
constexpr auto tick_interval = std::chrono::milliseconds(100);

double steady_s() {
  return std::chrono::duration<double>(steady::now().time_since_epoch()).count();
}

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

const orbit::SystemWallClock system_wall;

struct Pending {
  caf::strong_actor_ptr from;
  caf::actor dest;
  wire w;
  bool scheduled = false; // false: held for lack of a route
  double due = 0;         // steady seconds, when scheduled
};

struct DestQueue {
  std::deque<Pending> q;
  double busy_until = 0; // steady seconds: the last transmission on this route ends
  double last_due = 0;
  bool forced_down = false;
};

struct service_state {
  std::shared_ptr<NodeOrbit> orbit;
  std::unique_ptr<orbit::ConstellationModel> model;
  std::unique_ptr<orbit::Battery> battery;
  std::unique_ptr<orbit::SimClock> clock;
  double last_sim = 0, last_wall = 0, last_cpu = 0;
  std::map<std::string, DestQueue> queues;
  uint64_t held_bytes = 0, held = 0, dropped = 0, delivered = 0, delivered_bytes = 0;
  int reported_cores = 0; // what the node's worker says it keeps busy
  std::set<caf::actor_addr> reporters;
  double min_soc = 1, below_floor_s = 0;
  double queue_limit = 0; // bytes
};

// Charges the battery for the simulated time since the last call, with the
// cores the process kept busy (fractional: split into two constant pieces).
void integrate(service_state& st) {
  const double sim = st.clock->now();
  const double wall = steady_s();
  const double cpu = process_cpu_s();
  const double dt = sim - st.last_sim;
  const double sampled = st.last_wall > 0 && wall > st.last_wall
                             ? std::max(0.0, (cpu - st.last_cpu) / (wall - st.last_wall))
                             : 0;
  // The node's worker, while there is one, says what the satellite's
  // computer does; otherwise the process's CPU use stands for it.
  const double busy = st.reporters.empty() ? sampled : static_cast<double>(st.reported_cores);
  if (dt > 0) {
    const bool sun = st.model->sunlit(st.orbit->slot());
    const int whole = static_cast<int>(std::floor(busy));
    const double frac = busy - whole;
    if (frac > 0)
      st.battery->charge(dt * frac, sun, whole + 1);
    st.battery->charge(dt * (1 - frac), sun, whole);
    if (st.battery->below_limit())
      st.below_floor_s += dt;
    st.min_soc = std::min(st.min_soc, st.battery->soc());
  }
  st.last_sim = sim;
  st.last_wall = wall;
  st.last_cpu = cpu;
}

void publish(service_state& st) {
  const int me = st.orbit->slot();
  OrbitSnapshot s;
  s.sim_time_s = st.model->time();
  auto g = st.model->subpoint(me);
  s.lat_deg = g.lat_deg;
  s.lon_deg = g.lon_deg;
  s.alt_km = g.alt_m / 1e3;
  s.sunlit = st.model->sunlit(me);
  s.state_of_charge = st.battery->soc();
  s.in_contact = st.model->in_contact(me);
  for (const auto& l : st.model->links())
    if (l.up && (l.a == me || l.b == me))
      ++s.links_up;
  s.held = st.held;
  s.dropped = st.dropped;
  s.delivered = st.delivered;
  s.delivered_bytes = st.delivered_bytes;
  s.min_soc = std::min(st.min_soc, st.battery->soc());
  s.below_floor_s = st.below_floor_s;
  st.orbit->publish(s);
}

// Gives every held message at the head of `dest`'s queue its delivery time,
// while a route exists; arms a timer per message.
void schedule(caf::event_based_actor* self, service_state& st, const std::string& dest,
              DestQueue& dq) {
  const int to = st.orbit->slot_of(dest);
  for (auto& p : dq.q) {
    if (p.scheduled)
      continue;
    std::optional<orbit::Route> r;
    if (!dq.forced_down)
      r = st.model->route(st.orbit->slot(), to);
    if (!r)
      return; // held, and so is everything behind it
    const uint64_t bytes = p.w.bytes.size();
    const double total = st.model->delay(*r, bytes);
    const double tx = st.clock->wall_duration(total - r->latency_s);
    const double light = st.clock->wall_duration(r->latency_s);
    const double now = steady_s();
    const double start = std::max(now, dq.busy_until);
    dq.busy_until = start + tx;
    p.due = std::max(dq.busy_until + light, dq.last_due);
    dq.last_due = p.due;
    p.scheduled = true;
    --st.held;
    st.held_bytes -= bytes;
    const auto wait =
        std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, p.due - now) * 1e6));
    self->delayed_send(self, wait, flush_atom_v, dest);
  }
}

// Delivers the messages to `dest` that are due, in order.
void flush(service_state& st, DestQueue& dq) {
  const double now = steady_s() + 2e-4; // timers fire a little early at times
  while (!dq.q.empty() && dq.q.front().scheduled && dq.q.front().due <= now) {
    auto& p = dq.q.front();
    st.delivered_bytes += p.w.bytes.size();
    if (p.from)
      caf::send_as(caf::actor_cast<caf::actor>(p.from), p.dest, std::move(p.w));
    else
      caf::anon_send(p.dest, std::move(p.w));
    ++st.delivered;
    dq.q.pop_front();
  }
}

} // namespace

caf::behavior orbit_service_actor(caf::event_based_actor* self, std::shared_ptr<NodeOrbit> orb) {
  auto st = std::make_shared<service_state>();
  st->orbit = orb;
  const auto& file = orb->file();
  st->model = std::make_unique<orbit::ConstellationModel>(orbit::model_spec(file));
  std::vector<int> targets{orb->slot()};
  if (int ps = orb->slot_of(file.job.parameter_server); ps >= 0)
    targets.push_back(ps);
  if (int sc = orb->slot_of(file.job.scheduler); sc >= 0)
    targets.push_back(sc);
  st->model->set_targets(targets);
  st->clock = std::make_unique<orbit::SimClock>(system_wall, file.orbit->start(),
                                                file.orbit->time_scale, file.orbit->epoch_unix);
  st->battery =
      std::make_unique<orbit::Battery>(orbit::power_model(file.energy), file.energy.initial_soc);
  st->queue_limit = file.links.queue_limit_mib * 1024 * 1024;
  // The battery starts at initial_soc when the node starts.
  st->last_sim = st->clock->now();
  st->model->update(st->last_sim);
  integrate(*st);
  publish(*st);
  self->set_down_handler([st](caf::down_msg& dm) {
    if (st->reporters.erase(dm.source))
      st->reported_cores = 0;
  });
  self->delayed_send(self, tick_interval, tick_atom_v);
  return {
      [self, st](tick_atom) {
        integrate(*st);
        st->model->update(st->last_sim);
        for (auto& [dest, dq] : st->queues)
          schedule(self, *st, dest, dq);
        publish(*st);
        self->delayed_send(self, tick_interval, tick_atom_v);
      },
      [self, st](link_atom, caf::actor dest, const std::string& sat, wire& w) {
        if (st->orbit->slot_of(sat) < 0) {
          log_warn("link layer: unknown satellite '" + sat + "': sent without delay");
          self->send(dest, std::move(w));
          return;
        }
        auto& dq = st->queues[sat];
        const uint64_t bytes = w.bytes.size();
        // It will wait for a route when one is missing now or messages
        // ahead of it already wait: only then does the queue limit apply.
        const bool waits =
            dq.forced_down ||
            std::any_of(dq.q.begin(), dq.q.end(), [](const Pending& p) { return !p.scheduled; }) ||
            !st->model->reachable(st->orbit->slot(), st->orbit->slot_of(sat));
        if (waits && st->held_bytes + bytes > st->queue_limit) {
          ++st->dropped;
          std::string kind = "unknown";
          if (auto e = open_wire(w))
            kind = msg::kind_name(e->body);
          const std::string what =
              "link queue to " + sat + " full (" + std::to_string(st->held_bytes) +
              " bytes held, limit " + std::to_string(static_cast<uint64_t>(st->queue_limit)) +
              "): " + kind + " message of " + std::to_string(bytes) + " bytes refused";
          log_warn("link layer: " + what);
          if (auto from = caf::actor_cast<caf::actor>(self->current_sender()))
            self->send(from, make_wire(st->orbit->node_id(),
                                       msg::ErrorReply{"link_overflow", what, kind}));
          st->orbit->publish_counters(st->held, st->dropped, st->delivered, st->delivered_bytes);
          return;
        }
        ++st->held;
        st->held_bytes += bytes;
        dq.q.push_back(Pending{self->current_sender(), std::move(dest), std::move(w)});
        schedule(self, *st, sat, dq);
        st->orbit->publish_counters(st->held, st->dropped, st->delivered, st->delivered_bytes);
      },
      [self, st](busy_atom, int32_t cores) {
        // A worker that ends (or dies) is busy no more.
        if (auto from = caf::actor_cast<caf::actor>(self->current_sender());
            from && st->reporters.insert(from.address()).second)
          self->monitor(from);
        st->reported_cores = std::max(0, cores);
      },
      [st](flush_atom, const std::string& sat) {
        auto it = st->queues.find(sat);
        if (it != st->queues.end())
          flush(*st, it->second);
        st->orbit->publish_counters(st->held, st->dropped, st->delivered, st->delivered_bytes);
      },
      [self, st](link_down_atom, const std::string& sat, bool down) {
        auto& dq = st->queues[sat];
        dq.forced_down = down;
        log_info(std::string("link layer: route to ") + sat +
                 (down ? " forced down" : " restored"));
        if (!down)
          schedule(self, *st, sat, dq);
        st->orbit->publish_counters(st->held, st->dropped, st->delivered, st->delivered_bytes);
        return true;
      },
  };
}

void link_send(caf::event_based_actor* self, const caf::actor& dest,
               const std::string& dest_satellite, wire w) {
  const auto& ctx = node_context(self->home_system());
  if (!ctx.orbit || !ctx.orbit->service || dest_satellite == ctx.node_id) {
    self->send(dest, std::move(w));
    return;
  }
  self->send(ctx.orbit->service, link_atom_v, dest, dest_satellite, std::move(w));
}

void link_send(caf::event_based_actor* self, const caf::actor& dest,
               const std::string& dest_satellite, const caf::message& one_wire) {
  const auto& ctx = node_context(self->home_system());
  if (!ctx.orbit || !ctx.orbit->service || dest_satellite == ctx.node_id) {
    self->send(dest, one_wire);
    return;
  }
  link_send(self, dest, dest_satellite, one_wire.get_as<wire>(0));
}

Result<std::vector<uint8_t>> fetch_chunk(caf::actor_system& sys,
                                         const std::vector<PeerStore>& peers, const msg::Hash& h,
                                         std::chrono::milliseconds timeout) {
  const auto& ctx = node_context(sys);
  const wire request = make_wire(ctx.node_id, msg::ChunkRequest{h});
  for (const auto& peer : peers) {
    if (!peer.actor)
      continue;
    caf::scoped_actor s{sys};
    std::optional<std::vector<uint8_t>> got;
    // A DataChunk whose bytes match the key; anything else (not_found, a
    // corrupt copy, link_overflow) means: the next peer.
    auto take = [&](wire& w) {
      auto e = open_wire(w);
      if (e)
        if (auto* c = std::get_if<msg::DataChunk>(&e->body))
          if (sha256(c->data.data(), c->data.size()) == h)
            got = std::move(c->data);
    };
    if (ctx.orbit && ctx.orbit->service && peer.satellite != ctx.node_id) {
      // Through the link layer; the store answers through its own.
      s->send(ctx.orbit->service, link_atom_v, peer.actor, peer.satellite, request);
      s->receive(
          take, caf::after(timeout) >> [] {});
    } else {
      s->request(peer.actor, timeout, request).receive(take, [](caf::error&) {});
    }
    if (got)
      return std::move(*got);
  }
  return make_error(Errc::not_found, "no peer has chunk " + short_hex(h));
}

void report_busy(caf::event_based_actor* self, int cores) {
  const auto& ctx = node_context(self->home_system());
  if (ctx.orbit && ctx.orbit->service)
    self->send(ctx.orbit->service, busy_atom_v, static_cast<int32_t>(cores));
}

caf::behavior link_test_actor(caf::event_based_actor* self) {
  join_supervisor(self);
  auto sink = std::make_shared<caf::actor>();
  return {
      [self](peer_atom, const std::string& host, uint16_t port) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        auto mm = self->home_system().middleman().actor_handle();
        self->request(mm, std::chrono::seconds(10), caf::connect_atom_v, host, port)
            .then([rp](caf::node_id&, caf::strong_actor_ptr&,
                       std::set<std::string>&) mutable { rp.deliver(true); },
                  [rp](caf::error&) mutable { rp.deliver(false); });
        return rp;
      },
      [self](relay_atom, const caf::actor& dest, const std::string& sat, wire& w) {
        link_send(self, dest, sat, std::move(w));
      },
      [sink](sink_atom, const caf::actor& s) { *sink = s; },
      [self](link_down_atom, const std::string& sat, bool down) -> caf::result<bool> {
        const auto& ctx = node_context(self->home_system());
        if (!ctx.orbit || !ctx.orbit->service)
          return false;
        auto rp = self->make_response_promise<bool>();
        self->request(ctx.orbit->service, std::chrono::seconds(10), link_down_atom_v, sat, down)
            .then([rp](bool ok) mutable { rp.deliver(ok); },
                  [rp](caf::error&) mutable { rp.deliver(false); });
        return rp;
      },
      [self, sink](fetch_atom, const caf::actor& store, const std::string& sat, const wire& w) {
        auto e = open_wire(w);
        auto* req = e ? std::get_if<msg::ChunkRequest>(&e->body) : nullptr;
        if (!req || !*sink)
          return;
        // fetch_chunk() blocks: on a thread of its own.
        const std::vector<PeerStore> peers{{store, sat}};
        const msg::Hash h = req->sha256;
        self->spawn<caf::detached>([peers, h, to = *sink](caf::event_based_actor* f) {
          const auto& me = node_context(f->home_system()).node_id;
          auto got = fetch_chunk(f->home_system(), peers, h);
          f->send(to, got ? make_chunk_wire(me, {}, 0, h, msg::ByteView{got->data(), got->size()})
                          : make_wire(me, msg::ErrorReply{to_string(got.error().code),
                                                          got.error().message, "chunkRequest"}));
        });
      },
      [self, sink](wire& w) {
        if (*sink)
          self->send(*sink, std::move(w));
      },
  };
}

} // namespace orbitrain
