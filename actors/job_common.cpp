// Implementation of job_common.hpp.
#include "actors/job_common.hpp"

#include "actors/runtime.hpp"
#include "actors/tensor_exchange.hpp"
#include "core/log.hpp"
#include "schemas/codec.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <set>

namespace orbitrain::job {

const orbit::SystemWallClock& wall_clock() {
  static const orbit::SystemWallClock clock;
  return clock;
}

std::string me(caf::event_based_actor* self) {
  return node_context(self->home_system()).node_id;
}

std::vector<std::string> other_satellites(caf::event_based_actor* self, const msg::JobSpec& spec) {
  std::vector<std::string> out;
  for (const auto& s : spec.satellites)
    if (s.id != me(self))
      out.push_back(s.id);
  return out;
}

namespace {

const msg::SatelliteAddress* address_of(const msg::JobSpec& spec, const std::string& id) {
  for (const auto& s : spec.satellites)
    if (s.id == id)
      return &s;
  return nullptr;
}

} // namespace

// Connects `self`'s node to each satellite in `ids` (direct BASP
// connections: handles to actors there are then usable) and, when `spawn`
// is not empty, spawns an actor of that type on each. Calls `done` once with
// an error text or the spawned actors (in the order of `ids`).
void connect_all(caf::event_based_actor* self, const msg::JobSpec& spec,
                 const std::vector<std::string>& ids, const std::string& spawn,
                 std::function<void(std::string, std::vector<caf::actor>)> done) {
  struct Pending {
    size_t left;
    std::vector<caf::actor> spawned;
    std::string error;
    std::function<void(std::string, std::vector<caf::actor>)> done;
  };
  auto p = std::make_shared<Pending>(
      Pending{ids.size(), std::vector<caf::actor>(ids.size()), "", std::move(done)});
  if (ids.empty()) {
    p->done("", {});
    return;
  }
  auto finish_one = [p](const std::string& error) {
    if (!error.empty() && p->error.empty())
      p->error = error;
    if (--p->left == 0)
      p->done(p->error, std::move(p->spawned));
  };
  auto mm = self->home_system().middleman().actor_handle();
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto* a = address_of(spec, ids[i]);
    if (!a) {
      finish_one("satellite " + ids[i] + " is not in the job's constellation");
      continue;
    }
    const std::string id = ids[i];
    self->request(mm, setup_timeout, caf::connect_atom_v, a->host, a->port)
        .then(
            [=](caf::node_id& nid, caf::strong_actor_ptr&, std::set<std::string>&) {
              if (spawn.empty()) {
                finish_one("");
                return;
              }
              self->request(mm, setup_timeout, caf::spawn_atom_v, nid, spawn, caf::make_message(),
                            std::set<std::string>{})
                  .then(
                      [=](caf::strong_actor_ptr& ptr) {
                        p->spawned[i] = caf::actor_cast<caf::actor>(ptr);
                        finish_one("");
                      },
                      [=](caf::error& e) {
                        finish_one("cannot spawn " + spawn + " on " + id + ": " + to_string(e));
                      });
            },
            [=](caf::error& e) { finish_one("cannot connect to " + id + ": " + to_string(e)); });
  }
}

// The envelope in `w`, or nullopt after logging that `who` got a malformed
// message (a node survives bad input).
std::optional<msg::Envelope> open_or_warn(const wire& w, const char* who) {
  auto env = open_wire(w);
  if (!env) {
    log_warn(std::string(who) + ": malformed message: " + env.error().message);
    return std::nullopt;
  }
  return std::move(*env);
}

std::optional<SpecIn> read_spec(const wire& w) {
  auto env = open_wire(w);
  if (!env || !std::holds_alternative<msg::JobSpec>(env->body))
    return std::nullopt;
  return SpecIn{std::get<msg::JobSpec>(env->body), env->job_id};
}

wire bad_spec_reply(caf::event_based_actor* self) {
  return make_wire(me(self), msg::ErrorReply{"malformed_message", "bad job spec", "jobSpec"});
}

cp::LrSchedule schedule_of(const msg::JobSpec& s) {
  return cp::LrSchedule{s.lr, s.min_lr, s.warmup_steps, s.decay_steps};
}

// The store actors spawned on satellites `ids` (connect_all's order), with
// their satellites, for fetch_chunk().
std::vector<PeerStore> adopt_peer_stores(caf::event_based_actor* self,
                                         const std::vector<std::string>& ids,
                                         const std::vector<caf::actor>& stores) {
  self->attach_functor([stores] {
    for (const auto& a : stores)
      if (a)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  });
  std::vector<PeerStore> out;
  for (size_t i = 0; i < ids.size() && i < stores.size(); ++i)
    out.push_back({stores[i], ids[i]});
  return out;
}

// The parameters as frames [k*frame_floats, ...) of one flat tensor.
wire param_frame(const std::string& sender, const std::string& job, uint64_t version, uint64_t step,
                 const float* params, size_t n, size_t begin, size_t end) {
  msg::TensorFrame h;
  h.kind = msg::TensorKind::parameters;
  h.version = version;
  h.step = step;
  h.frame_index = static_cast<uint32_t>(begin / frame_floats);
  h.frame_count = frames_in(0, n);
  h.total_bytes = n * sizeof(float);
  return wire{
      msg::encode_flat_frame(sender, job, h, "parameters", n, begin, params + begin, end - begin)};
}

} // namespace orbitrain::job
