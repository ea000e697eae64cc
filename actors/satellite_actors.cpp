// Implementation of satellite_actors.hpp.
#include "actors/satellite_actors.hpp"

#include "actors/link_layer.hpp"
#include "actors/runtime.hpp"
#include "actors/wire_message.hpp"
#include "core/log.hpp"
#include "core/sysinfo.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <set>
#include <unistd.h>

namespace orbitrain {

namespace {

const caf::atom_value supervisor_key = caf::atom("supervisor");

struct supervisor_state {
  std::set<caf::actor_addr> members;
};

msg::NodeStatus make_status(caf::actor_system& sys, uint64_t nonce, uint32_t supervised) {
  const auto& ctx = node_context(sys);
  auto host = sample_host();
  msg::NodeStatus s;
  s.node_id = ctx.node_id;
  s.nonce = nonce;
  s.uptime_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - ctx.started)
                                          .count());
  s.pid = static_cast<uint32_t>(::getpid());
  s.actors_running = static_cast<uint32_t>(sys.registry().running());
  s.supervised_actors = supervised;
  s.cpu_count = host.cpu_count;
  s.load1 = host.load1;
  s.process_cpu_seconds = host.process_cpu_seconds;
  s.rss_bytes = host.process_rss;
  s.mem_total_bytes = host.mem_total;
  s.mem_available_bytes = host.mem_available;
  if (ctx.orbit) {
    const auto o = ctx.orbit->snapshot();
    s.has_orbit = true;
    s.sim_time_s = o.sim_time_s;
    s.lat_deg = o.lat_deg;
    s.lon_deg = o.lon_deg;
    s.alt_km = o.alt_km;
    s.sunlit = o.sunlit;
    s.state_of_charge = o.state_of_charge;
    s.in_contact = o.in_contact;
    s.links_up = o.links_up;
    s.link_held = o.held;
    s.link_dropped = o.dropped;
    s.link_delivered = o.delivered;
    s.link_bytes = o.delivered_bytes;
    s.min_state_of_charge = o.min_soc;
    s.below_floor_s = o.below_floor_s;
  }
  return s;
}

std::string sender_node(caf::event_based_actor* self) {
  if (auto& src = self->current_sender())
    return to_string(src->node());
  return "an unknown node";
}

} // namespace

caf::behavior supervisor_actor(caf::event_based_actor* self) {
  // Members are monitored, not linked: a member that ends (a job's actors
  // are told to exit by the ground) must not take the supervisor with it.
  // When the supervisor itself is told to exit, it ends every member first.
  auto state = std::make_shared<supervisor_state>();
  self->set_down_handler([state](caf::down_msg& dm) { state->members.erase(dm.source); });
  self->set_exit_handler([self, state](caf::exit_msg& em) {
    for (const auto& m : state->members)
      if (auto a = caf::actor_cast<caf::actor>(m))
        self->send_exit(a, em.reason);
    state->members.clear();
    self->quit(em.reason);
  });
  return {
      [self, state](join_atom, caf::actor member) {
        self->monitor(member);
        state->members.insert(member.address());
      },
      [state](count_atom) { return static_cast<uint32_t>(state->members.size()); },
  };
}

caf::actor find_supervisor(caf::actor_system& sys) {
  return sys.registry().get<caf::actor>(supervisor_key);
}

void join_supervisor(caf::event_based_actor* self) {
  if (auto sup = find_supervisor(self->home_system()))
    self->send(sup, join_atom_v, caf::actor_cast<caf::actor>(self));
}

caf::behavior probe_actor(caf::event_based_actor* self) {
  join_supervisor(self);
  const std::string me = node_context(self->home_system()).node_id;
  return {
      [self, me](const wire& w) -> caf::result<wire> {
        auto env = open_wire(w);
        if (!env) {
          log_warn("malformed message for probe from " + sender_node(self) +
                   " (kind unknown): " + env.error().message);
          return make_wire(
              me, msg::ErrorReply{to_string(env.error().code), env.error().message, "unknown"});
        }
        auto* req = std::get_if<msg::ProbeRequest>(&env->body);
        if (!req) {
          std::string kind = msg::kind_name(env->body);
          log_warn("unexpected " + kind + " message for probe from " + env->sender + " on " +
                   sender_node(self));
          return make_wire(
              me, msg::ErrorReply{"unexpected_message", "a probe answers probeRequest only", kind});
        }
        auto rp = self->make_response_promise<wire>();
        auto& sys = self->home_system();
        const uint64_t nonce = req->nonce;
        if (auto sup = find_supervisor(sys)) {
          self->request(sup, std::chrono::seconds(2), count_atom_v)
              .then(
                  [rp, &sys, me, nonce](uint32_t n) mutable {
                    rp.deliver(make_wire(me, make_status(sys, nonce, n)));
                  },
                  [rp, &sys, me, nonce](caf::error&) mutable {
                    rp.deliver(make_wire(me, make_status(sys, nonce, 0)));
                  });
        } else {
          rp.deliver(make_wire(me, make_status(sys, nonce, 0)));
        }
        return rp;
      },
      caf::after(std::chrono::minutes(1)) >> [self] { self->quit(); },
  };
}

void register_supervisor(caf::actor_system& sys, const caf::actor& sup) {
  sys.registry().put(supervisor_key, sup);
}

} // namespace orbitrain
