// Implementation of job_actors.hpp.
#include "actors/job_actors.hpp"

#include "actors/link_layer.hpp"
#include "actors/runtime.hpp"
#include "actors/satellite_actors.hpp"
#include "actors/tensor_exchange.hpp"
#include "actors/wire_message.hpp"
#include "compute/model.hpp"
#include "compute/optimizer.hpp"
#include "compute/tokenizer.hpp"
#include "compute/trainer.hpp"
#include "core/log.hpp"
#include "core/sysinfo.hpp"
#include "orbit/clock.hpp"
#include "orbit/guard.hpp"
#include "orbit/model.hpp"
#include "orbit/policy.hpp"
#include "schemas/codec.hpp"
#include "storage/hash_ring.hpp"
#include "storage/store.hpp"
#include "storage/window_reader.hpp"

#include <algorithm>
#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <set>

namespace orbitrain {

namespace cp = compute;

namespace {

using namespace std::chrono_literals;
constexpr auto setup_timeout = std::chrono::seconds(20);
// Simulated time for the workers' guard and the scheduler's energy rule.
const orbit::SystemWallClock job_wall;

std::string me(caf::event_based_actor* self) {
  return node_context(self->home_system()).node_id;
}

const msg::SatelliteAddress* address_of(const msg::JobSpec& spec, const std::string& id) {
  for (const auto& s : spec.satellites)
    if (s.id == id)
      return &s;
  return nullptr;
}

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

// A job spec and its job id from a set-up message.
struct SpecIn {
  msg::JobSpec spec;
  std::string job;
};

std::optional<SpecIn> read_spec(const wire& w) {
  auto env = open_wire(w);
  if (!env || !std::holds_alternative<msg::JobSpec>(env->body))
    return std::nullopt;
  return SpecIn{std::get<msg::JobSpec>(env->body), env->job_id};
}

cp::LrSchedule schedule_of(const msg::JobSpec& s) {
  return cp::LrSchedule{s.lr, s.min_lr, s.warmup_steps, s.decay_steps};
}

// The store actors spawned on satellites `ids` (connect_all's order), with
// their satellites, for fetch_chunk().
std::vector<PeerStore> peer_stores_of(const std::vector<std::string>& ids,
                                      const std::vector<caf::actor>& stores) {
  std::vector<PeerStore> out;
  for (size_t i = 0; i < ids.size() && i < stores.size(); ++i)
    out.push_back({stores[i], ids[i]});
  return out;
}

// ---- worker: the compute thread ------------------------------------------------

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

// Runs on its own (detached) thread: model, windows, forward and backward.
// Parameters come from the worker's landing, block by block as forward needs
// them; gradients go to the parameter server as backward finishes them, then
// the result (after its frames, from the same sender, so in order). Reads
// chunks held elsewhere from peer stores (fetch_chunk: blocking, through the
// link layer with an orbit model).
caf::behavior compute_actor(caf::event_based_actor* self, caf::actor worker, caf::actor ps,
                            wire spec_wire, std::vector<PeerStore> peer_stores,
                            std::shared_ptr<ParamLanding> landing) {
  auto env = open_wire(spec_wire);
  const auto spec = std::get<msg::JobSpec>(env->body);
  const std::string job = env->job_id;
  auto& ctx = node_context(self->home_system());
  omp_set_num_threads(static_cast<int>(std::max<uint32_t>(1, spec.threads)));
  auto manifest = ctx.store->get_manifest(spec.dataset).value();
  cp::GptConfig cfg = cp::GptConfig::from_json(nlohmann::json::parse(spec.model_config));
  auto model =
      std::make_shared<cp::Gpt>(cfg, cp::StageRange::whole(), cp::parse_precision(spec.precision));
  auto tok = std::make_shared<cp::Tokenizer>(manifest.vocabulary);
  // Chunks held elsewhere come from the peers that hold them.
  // (The actor system outlives the actor: hold it by pointer, not by a
  // reference to this function's local.)
  auto* sys = &self->home_system();
  auto fetch = [sys, peer_stores](const msg::Hash& h) { return fetch_chunk(*sys, peer_stores, h); };
  auto source = std::make_shared<StoreChunkSource>(*ctx.store, manifest, fetch);
  auto reader = std::make_shared<WindowReader>(manifest, *source);
  // Which version the model's parameters hold, and how much of it.
  struct Held {
    uint64_t version = UINT64_MAX;
    size_t copied = 0;
  };
  auto held = std::make_shared<Held>();
  const std::string id = ctx.node_id;
  const bool async = spec.mode == "async";
  const auto boundaries = model->gradient_boundaries();
  const uint32_t grad_frames = gradient_frame_count(boundaries, model->grads().size());
  return {
      [=, source = source](const wire& w) { // `reader` reads through `source`
        auto e = open_wire(w);
        const auto& task = std::get<msg::TaskAssignment>(e->body);
        msg::TaskResult r;
        r.task_id = task.task_id;
        r.step = task.step;
        r.micro_batch = task.micro_batch;
        const auto t0 = std::chrono::steady_clock::now();
        std::chrono::steady_clock::duration waited{}; // for parameters to arrive
        const int T = model->config().block_size;
        const int B = static_cast<int>(task.window_starts.size());
        const size_t n = model->params().size();
        std::vector<int32_t> x(static_cast<size_t>(B) * T), y(x.size());
        try {
          for (int b = 0; b < B; ++b) {
            auto win = reader->read(task.window_starts[static_cast<size_t>(b)],
                                    static_cast<uint32_t>(T + 1));
            if (!win)
              throw std::runtime_error(win.error().message);
            auto ids = tok->encode(
                std::string_view(reinterpret_cast<const char*>(win->data()), win->size()));
            std::copy_n(ids.begin(), T, x.begin() + static_cast<ptrdiff_t>(b) * T);
            std::copy_n(ids.begin() + 1, T, y.begin() + static_cast<ptrdiff_t>(b) * T);
          }
          // Sync: the version the task names. Async: the newest one here.
          const uint64_t v = async ? landing->wait_any() : task.param_version;
          r.param_version = v;
          if (held->version != v)
            *held = Held{v, 0};
          size_t unsent = model->grads().size();
          uint32_t frame = 0;
          msg::TensorFrame h;
          h.kind = msg::TensorKind::gradients;
          h.version = v;
          h.step = task.step;
          h.task_id = task.task_id;
          h.micro_batch = task.micro_batch;
          h.frame_count = grad_frames;
          h.total_bytes = n * sizeof(float);
          model->set_hooks({[&](size_t end) {
                              const auto w0 = std::chrono::steady_clock::now();
                              landing->take(v, end, model->params().data(), held->copied);
                              waited += std::chrono::steady_clock::now() - w0;
                            },
                            [&](size_t begin) {
                              for (size_t b = begin; b < unsent; b += frame_floats) {
                                const size_t e = std::min(b + frame_floats, unsent);
                                h.frame_index = frame++;
                                link_send(
                                    self, ps, spec.parameter_server,
                                    wire{msg::encode_flat_frame(id, job, h, "gradients", n, b,
                                                                model->grads().data() + b, e - b)});
                              }
                              unsent = std::min(unsent, begin);
                            }});
          model->zero_grad();
          r.loss = model->forward(x.data(), nullptr, y.data(), B, T);
          // Sync: a step is the mean of M micro-batches. Async: every
          // gradient is a step of its own.
          model->backward(nullptr,
                          async ? 1.f : 1.f / static_cast<float>(spec.micro_batches_per_step));
          model->set_hooks({});
          r.tokens = static_cast<uint64_t>(B) * T;
          r.gradient_frames = frame;
        } catch (const std::exception& ex) {
          model->set_hooks({});
          r.error_message = ex.what();
        }
        // Compute time proper: without the wait for parameters.
        r.compute_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                                 t0 - waited)
                           .count();
        auto result = make_wire(id, r, job);
        link_send(self, ps, spec.parameter_server, result);
        self->send(worker, task_done_atom_v, std::move(result));
      },
  };
}

// ---- worker ------------------------------------------------------------------

// The worker's energy guard (aware policy with an orbit model,
// orbit/guard.hpp): its satellite's slot, the analytic orbits for its
// eclipses, the power model and simulated time.
struct worker_guard {
  int slot = -1;
  std::unique_ptr<orbit::ConstellationModel> model;
  std::unique_ptr<orbit::SimClock> clock;
  orbit::PowerModel power;
};

struct worker_state {
  msg::JobSpec spec;
  std::string job;
  caf::actor ps, scheduler, compute;
  std::shared_ptr<ParamLanding> landing = std::make_shared<ParamLanding>();
  uint64_t version = UINT64_MAX; // the newest parameter version arriving or here
  std::deque<wire> waiting;      // tasks for a version not here yet
  uint32_t in_compute = 0;       // tasks handed to the compute thread
  bool awaiting_params = false;  // async: a gradient is out, fresh parameters on the way
  uint64_t tasks_done = 0;
  double step_ms = 0; // moving average of a task's compute time
  // How long each task kept the compute thread busy: from its hand-over (or
  // the previous task's end, when it queued there) to its result.
  std::deque<std::chrono::steady_clock::time_point> handed; // per task in compute
  std::chrono::steady_clock::time_point last_done{};
  orbit::BusySpans busy;
  std::unique_ptr<worker_guard> guard; // null: no guard (load policy or no orbit)
};

// The worker's load, for the scheduler.
wire load_report(caf::event_based_actor* self, const worker_state& st) {
  auto host = sample_host();
  msg::LoadReport r;
  r.worker = me(self);
  r.tasks_queued = static_cast<uint32_t>(st.waiting.size()) + st.in_compute;
  r.tasks_done = st.tasks_done;
  r.step_time_ms = st.step_ms;
  r.cpu_load = host.cpu_count ? host.load1 / host.cpu_count : 0;
  r.rss_bytes = host.process_rss;
  r.mem_available_bytes = host.mem_available;
  r.param_version = st.version == UINT64_MAX ? 0 : st.version;
  r.busy_max_ms = st.busy.recent_max() * 1e3;
  // With an orbit model: the satellite's charge, sunlight and contact.
  if (const auto& orb = node_context(self->home_system()).orbit) {
    const auto snap = orb->snapshot();
    r.has_energy = true;
    r.state_of_charge = snap.state_of_charge;
    r.sunlit = snap.sunlit;
    r.in_contact = snap.in_contact;
    r.sim_time_s = snap.sim_time_s;
  }
  return make_wire(me(self), r, st.job);
}

// Whether the worker's battery can carry task `t` if it starts now
// (orbit::may_start with a pessimistic duration); logs a refusal.
bool guard_allows(caf::event_based_actor* self, const worker_state& st,
                  const msg::TaskAssignment& t) {
  const auto& g = *st.guard;
  const auto snap = node_context(self->home_system()).orbit->snapshot();
  const double now = g.clock->now();
  const double d = orbit::guarded_duration(st.busy, g.clock->time_scale(), t.planned_s);
  const int cores = static_cast<int>(std::max<uint32_t>(1, st.spec.threads));
  if (orbit::may_start(*g.model, g.power, g.slot, snap.state_of_charge, snap.sim_time_s, now, d,
                       cores))
    return true;
  log_info("worker: declining task " + std::to_string(t.task_id) + ": the battery (" +
           std::to_string(std::lround(snap.state_of_charge * 100)) + "%, " +
           (snap.sunlit ? "sunlit" : "in eclipse") + ") cannot carry " +
           std::to_string(std::lround(d)) + " simulated s of " + std::to_string(cores) +
           " busy core(s) and the rest of its eclipse above the depth-of-discharge floor");
  return false;
}

} // namespace

caf::behavior job_worker_actor(caf::event_based_actor* self) {
  join_supervisor(self);
  auto st = std::make_shared<worker_state>();
  // A compute thread waiting for parameters must not outlive the worker.
  self->attach_functor([landing = st->landing] { landing->close(); });
  auto dispatch = [self, st] {
    // Sync: tasks run in order, each on the version it names. Async: one at
    // a time, each on the freshest parameters the server has answered the
    // previous gradient with (the server bounds the staleness). With the
    // energy guard, one at a time in both modes, each checked against the
    // battery when its turn comes; one it cannot carry is declined.
    const bool async = st->spec.mode == "async";
    bool declined = false;
    while (!st->waiting.empty()) {
      auto e = open_wire(st->waiting.front());
      const auto& t = std::get<msg::TaskAssignment>(e->body);
      if (async ? st->version == UINT64_MAX || st->in_compute > 0 || st->awaiting_params
                : st->version == UINT64_MAX || t.param_version > st->version ||
                      (st->guard && st->in_compute > 0))
        break;
      if (st->guard && !guard_allows(self, *st, t)) {
        msg::TaskResult r;
        r.task_id = t.task_id;
        r.step = t.step;
        r.micro_batch = t.micro_batch;
        r.declined = true;
        link_send(self, st->scheduler, st->spec.scheduler, make_wire(me(self), r, st->job));
        st->waiting.pop_front();
        declined = true;
        continue;
      }
      self->send(st->compute, st->waiting.front());
      st->waiting.pop_front();
      st->handed.push_back(std::chrono::steady_clock::now());
      ++st->in_compute;
    }
    report_busy(self, st->in_compute > 0 ? static_cast<int>(st->spec.threads) : 0);
    // The scheduler counts this worker out until a report says otherwise.
    if (declined)
      link_send(self, st->scheduler, st->spec.scheduler, load_report(self, *st));
  };
  return {
      [self, st](job_init_atom, const wire& spec_wire, caf::actor scheduler,
                 caf::actor ps) -> caf::result<wire> {
        auto in = read_spec(spec_wire);
        if (!in)
          return make_wire(me(self),
                           msg::ErrorReply{"malformed_message", "bad job spec", "jobSpec"});
        st->spec = in->spec;
        st->job = in->job;
        st->ps = ps;
        st->scheduler = scheduler;
        auto& ctx = node_context(self->home_system());
        // The energy guard: only for the aware policy, with an orbit model.
        if (ctx.orbit && ctx.orbit->slot() >= 0 &&
            orbit::parse_policy(st->spec.scheduler_policy) == orbit::Policy::aware) {
          const auto& file = ctx.orbit->file();
          auto g = std::make_unique<worker_guard>();
          g->slot = ctx.orbit->slot();
          g->model = std::make_unique<orbit::ConstellationModel>(orbit::model_spec(file));
          g->clock = std::make_unique<orbit::SimClock>(
              job_wall, file.orbit->start(), file.orbit->time_scale, file.orbit->epoch_unix);
          g->power = orbit::power_model(file.energy);
          st->guard = std::move(g);
        }
        if (!ctx.store || !ctx.store->get_manifest(st->spec.dataset))
          return make_wire(
              me(self), msg::ErrorReply{"not_found",
                                        me(self) + " holds no dataset '" + st->spec.dataset + "'",
                                        "jobSpec"});
        auto rp = self->make_response_promise<wire>();
        // Connect to the scheduler's and the parameter server's satellites,
        // and spawn a store proxy on every other satellite for remote chunks.
        std::vector<std::string> peers;
        for (const auto& s : st->spec.satellites)
          if (s.id != me(self))
            peers.push_back(s.id);
        connect_all(
            self, st->spec, {st->spec.scheduler, st->spec.parameter_server}, "",
            [self, st, rp, peers, spec_wire](std::string err, std::vector<caf::actor>) mutable {
              if (!err.empty()) {
                rp.deliver(make_wire(me(self), msg::ErrorReply{"unreachable", err, "jobSpec"}));
                return;
              }
              connect_all(self, st->spec, peers, "store",
                          [self, st, rp, peers, spec_wire](std::string,
                                                           std::vector<caf::actor> stores) mutable {
                            // Peers that cannot be reached are skipped
                            // (their chunks come from other replicas).
                            // The peers' store actors end with this worker.
                            self->attach_functor([stores] {
                              for (const auto& a : stores)
                                if (a)
                                  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
                            });
                            st->compute = self->spawn<caf::detached + caf::linked>(
                                compute_actor, caf::actor_cast<caf::actor>(self), st->ps, spec_wire,
                                peer_stores_of(peers, stores), st->landing);
                            rp.deliver(make_wire(me(self), msg::StepDone{}, st->job));
                            self->delayed_send(self, std::chrono::seconds(3), tick_atom_v);
                          });
            });
        return rp;
      },
      [self, st, dispatch](wire& w) {
        // Parameter frames go straight to the landing (the received bytes
        // themselves: `wire&` moves them when this worker is the message's
        // only holder), where the compute thread takes them as forward
        // needs them.
        auto frame = msg::decode_flat_frame(w.bytes.data(), w.bytes.size());
        if (frame) {
          if (frame->header.kind != msg::TensorKind::parameters)
            return;
          if (!st->landing->land(*frame, std::move(w.bytes))) {
            log_warn("worker: parameter frame " + std::to_string(frame->header.frame_index) +
                     " of version " + std::to_string(frame->header.version) + " from " +
                     frame->sender + " is out of order; dropped");
            return;
          }
          if (frame->header.version != st->version) {
            st->version = frame->header.version;
            st->awaiting_params = false;
            dispatch();
          }
          return;
        }
        if (frame.error().code != Errc::invalid_argument) {
          log_warn("worker: malformed tensor frame: " + frame.error().message);
          return;
        }
        auto env = open_or_warn(w, "worker");
        if (!env)
          return;
        if (std::holds_alternative<msg::TaskAssignment>(env->body)) {
          st->waiting.push_back(w);
          dispatch();
        }
      },
      [self, st, dispatch](task_done_atom, const wire& result) {
        link_send(self, st->scheduler, st->spec.scheduler, result);
        const auto now = std::chrono::steady_clock::now();
        if (!st->handed.empty()) {
          const auto from = std::max(st->handed.front(), st->last_done);
          st->busy.add(std::chrono::duration<double>(now - from).count());
          st->handed.pop_front();
        }
        st->last_done = now;
        if (st->in_compute > 0)
          --st->in_compute;
        ++st->tasks_done;
        if (auto e = open_wire(result))
          if (auto* r = std::get_if<msg::TaskResult>(&e->body)) {
            st->step_ms =
                st->step_ms == 0 ? r->compute_ms : 0.8 * st->step_ms + 0.2 * r->compute_ms;
            // Async: the server answers every gradient with parameters,
            // unless they are here already.
            st->awaiting_params = st->spec.mode == "async" && r->error_message.empty() &&
                                  st->version == r->param_version;
          }
        link_send(self, st->scheduler, st->spec.scheduler, load_report(self, *st));
        dispatch();
      },
      // Every few seconds, and with every result: the worker's load.
      [self, st](tick_atom) {
        if (st->scheduler)
          link_send(self, st->scheduler, st->spec.scheduler, load_report(self, *st));
        self->delayed_send(self, std::chrono::seconds(3), tick_atom_v);
      },
  };
}

// ---- parameter server ------------------------------------------------------------

namespace {

struct ps_state {
  msg::JobSpec spec;
  std::string job;
  std::vector<caf::actor> workers;
  caf::actor scheduler;
  std::unique_ptr<cp::Gpt> model; // holds the master parameters
  std::unique_ptr<cp::AdamW> adam;
  uint32_t step = 0;                           // the step being collected
  uint64_t version = 0;                        // parameters have seen `version` steps
  std::map<uint64_t, GradientFrames> incoming; // by task id, until its result
  std::map<uint32_t, GradientFrames> ready;    // sync: complete, by micro-batch
  std::vector<uint64_t> ready_tasks;           // sync: the task accepted for each micro-batch
  OrderedSum sum;                              // sync: the step's sum, built as frames arrive
  std::map<uint32_t, double> losses;
  uint64_t tokens = 0;
  std::vector<uint32_t> done_per_worker;
  std::vector<PeerStore> peer_stores; // for validation windows held elsewhere
  std::optional<std::vector<int32_t>> val_tokens;
  uint64_t refused = 0; // async: gradients refused as too stale
  // For the step's timing and traffic figures (StepDone).
  std::chrono::steady_clock::time_point sent_at;                            // sync: last broadcast
  std::map<caf::actor_addr, std::chrono::steady_clock::time_point> sent_to; // async
  double compute_ms = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
};

// The parameter server's checkpoint: everything a resumed job needs. The
// scheduler's sampling cursor is the step itself (windows are a function of
// seed and step), so it needs no state of its own.
//   "OTPS" u32 version=1, u64 step, u64 adam steps, u64 n, u32 spec bytes,
//   spec (a JobSpec envelope), params, AdamW m, AdamW v (n floats each, LE)
struct PsCheckpoint {
  msg::JobSpec spec;
  uint64_t step = 0;
  int64_t adam_steps = 0;
  std::vector<float> params, m, v;
};

void append(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}

std::vector<uint8_t> encode_ps_checkpoint(const ps_state& st, const std::string& sender) {
  std::vector<uint8_t> out;
  const size_t n = st.model->params().size();
  const auto spec = make_wire(sender, st.spec, st.job).bytes;
  out.reserve(40 + spec.size() + 3 * n * sizeof(float));
  append(out, "OTPS", 4);
  const uint32_t version = 1, spec_len = static_cast<uint32_t>(spec.size());
  const uint64_t step = st.step, adam = static_cast<uint64_t>(st.adam->steps_taken()), count = n;
  append(out, &version, 4);
  append(out, &step, 8);
  append(out, &adam, 8);
  append(out, &count, 8);
  append(out, &spec_len, 4);
  append(out, spec.data(), spec.size());
  append(out, st.model->params().data(), n * sizeof(float));
  append(out, st.adam->m().data(), n * sizeof(float));
  append(out, st.adam->v().data(), n * sizeof(float));
  return out;
}

std::optional<PsCheckpoint> decode_ps_checkpoint(const std::vector<uint8_t>& b) {
  if (b.size() < 36 || std::memcmp(b.data(), "OTPS", 4) != 0)
    return std::nullopt;
  uint32_t version = 0, spec_len = 0;
  uint64_t step = 0, adam = 0, n = 0;
  std::memcpy(&version, b.data() + 4, 4);
  std::memcpy(&step, b.data() + 8, 8);
  std::memcpy(&adam, b.data() + 16, 8);
  std::memcpy(&n, b.data() + 24, 8);
  std::memcpy(&spec_len, b.data() + 32, 4);
  if (version != 1 || n > (uint64_t{1} << 34) || b.size() != 36 + spec_len + 3 * n * sizeof(float))
    return std::nullopt;
  auto env = msg::decode(b.data() + 36, spec_len);
  if (!env || !std::holds_alternative<msg::JobSpec>(env->body))
    return std::nullopt;
  PsCheckpoint c;
  c.spec = std::get<msg::JobSpec>(env->body);
  c.step = step;
  c.adam_steps = static_cast<int64_t>(adam);
  const uint8_t* p = b.data() + 36 + spec_len;
  for (auto* dst : {&c.params, &c.m, &c.v}) {
    dst->resize(n);
    std::memcpy(dst->data(), p, n * sizeof(float));
    p += n * sizeof(float);
  }
  return c;
}

// Mean loss over the first `eval_batches` sequential batches of the
// validation split, exactly as train-local evaluates (batch min(B, 8)).
std::optional<double> validation_loss(caf::event_based_actor* self, ps_state& st) {
  auto& sys = self->home_system();
  auto& ctx = node_context(sys);
  const int T = st.model->config().block_size;
  if (!st.val_tokens) {
    auto manifest = ctx.store ? ctx.store->get_manifest(st.spec.dataset)
                              : Result<msg::DatasetManifest>(make_error(Errc::not_found, ""));
    if (!manifest)
      return std::nullopt;
    const auto peers = st.peer_stores;
    StoreChunkSource source(*ctx.store, *manifest, [&sys, peers](const msg::Hash& h) {
      return fetch_chunk(sys, peers, h);
    });
    WindowReader reader(*manifest, source);
    // The split is by position, as train-local's split_90_10.
    const uint64_t begin = manifest->total_bytes * 9 / 10;
    auto bytes = reader.read(begin, static_cast<uint32_t>(manifest->total_bytes - begin));
    if (!bytes) {
      log_warn("validation data unavailable: " + bytes.error().message);
      return std::nullopt;
    }
    cp::Tokenizer tok(manifest->vocabulary);
    st.val_tokens =
        tok.encode(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  }
  if (st.val_tokens->size() < static_cast<size_t>(T) + 1)
    return std::nullopt;
  const int B = std::max(1, std::min(static_cast<int>(st.spec.micro_batch), 8));
  return cp::evaluate(*st.model, *st.val_tokens, B, T, static_cast<int>(st.spec.eval_batches));
}

void write_checkpoint(caf::event_based_actor* self, const ps_state& st) {
  auto& ctx = node_context(self->home_system());
  if (!ctx.store)
    return;
  auto r = ctx.store->put_checkpoint(st.job, st.step, encode_ps_checkpoint(st, me(self)));
  if (!r)
    log_warn("checkpoint of job " + st.job + " at step " + std::to_string(st.step) +
             " failed: " + r.error().message);
  else
    log_info("checkpoint of job " + st.job + " at step " + std::to_string(st.step));
}

// One optimizer step from the gradient in the model's gradient buffer: clip
// and AdamW at the schedule's rate. Counts the step and the version.
// `update_start`: when the parameter server began its own work on the step.
// `stream`: sends the new parameters as AdamW finishes each frame of them.
msg::StepDone apply_step(ps_state& st, double loss, uint64_t tokens,
                         std::chrono::steady_clock::time_point update_start, ParamStream* stream) {
  auto& g = st.model->grads();
  msg::StepDone done;
  done.step = st.step;
  done.loss = loss;
  done.tokens = tokens;
  done.grad_norm = cp::grad_norm(g.data(), g.size());
  done.lr = schedule_of(st.spec).at(static_cast<int>(st.step));
  st.adam->step(
      st.model->params().data(), g.data(), done.lr,
      [stream](size_t end) {
        if (stream)
          stream->progress(end);
      },
      cp::clip_scale(done.grad_norm, st.spec.grad_clip));
  done.version = ++st.version;
  done.tasks_per_worker = st.done_per_worker;
  done.refused = st.refused;
  ++st.step;
  std::fill(st.done_per_worker.begin(), st.done_per_worker.end(), 0);
  const auto now = std::chrono::steady_clock::now();
  done.update_ms = std::chrono::duration<double, std::milli>(now - update_start).count();
  done.compute_ms = st.compute_ms;
  done.bytes_in = st.bytes_in;
  done.bytes_out = st.bytes_out;
  st.compute_ms = 0;
  st.bytes_in = st.bytes_out = 0;
  return done;
}

// After a step's new parameters are on their way: the validation loss and
// the checkpoint when they are due (the workers compute meanwhile).
void after_step(caf::event_based_actor* self, ps_state& st, msg::StepDone& done) {
  if (st.step == st.spec.steps || (st.spec.eval_every && st.step % st.spec.eval_every == 0))
    done.val_loss = validation_loss(self, st);
  if (st.spec.checkpoint_every &&
      (st.step % st.spec.checkpoint_every == 0 || st.step == st.spec.steps))
    write_checkpoint(self, st);
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// The satellite of worker `w` (for the link layer).
std::string worker_satellite(const ps_state& st, const caf::actor& w) {
  for (size_t i = 0; i < st.workers.size() && i < st.spec.workers.size(); ++i)
    if (st.workers[i] == w)
      return st.spec.workers[i];
  return {};
}

void count_task(ps_state& st, const std::string& worker) {
  for (size_t i = 0; i < st.spec.workers.size(); ++i)
    if (st.spec.workers[i] == worker)
      ++st.done_per_worker[i];
}

} // namespace

caf::behavior job_ps_actor(caf::event_based_actor* self) {
  join_supervisor(self);
  auto st = std::make_shared<ps_state>();
  // The frame [begin, end) of the current parameters, with `version`, as
  // one message for every recipient (encoded once, shared).
  auto param_message = [self, st](uint64_t version, uint64_t step, size_t begin, size_t end) {
    const auto& p = st->model->params();
    return caf::make_message(
        param_frame(me(self), st->job, version, step, p.data(), p.size(), begin, end));
  };
  auto note_sent = [st](const std::vector<caf::actor>& to) {
    const auto now = std::chrono::steady_clock::now();
    st->sent_at = now;
    for (const auto& w : to)
      st->sent_to[w.address()] = now;
  };
  // The current parameters, whole.
  auto send_params = [self, st, param_message, note_sent](const std::vector<caf::actor>& to) {
    note_sent(to);
    const size_t n = st->model->params().size();
    for (size_t b = 0; b < n; b += frame_floats) {
      auto m = param_message(st->version, st->step, b, std::min(n, b + frame_floats));
      for (const auto& w : to) {
        st->bytes_out += m.get_as<wire>(0).bytes.size();
        link_send(self, w, worker_satellite(*st, w), m);
      }
    }
  };
  // The parameters the running update is producing, frame by frame.
  auto stream_to = [self, st, param_message, note_sent](std::vector<caf::actor> to) {
    note_sent(to);
    return ParamStream(st->model->params().size(), [=](size_t b, size_t e) {
      auto m = param_message(st->version + 1, st->step + 1, b, e);
      for (const auto& w : to) {
        st->bytes_out += m.get_as<wire>(0).bytes.size();
        link_send(self, w, worker_satellite(*st, w), m);
      }
    });
  };
  auto broadcast = [st, send_params] { send_params(st->workers); };
  auto worker_of = [st](const std::string& id) -> caf::actor {
    for (size_t i = 0; i < st->spec.workers.size() && i < st->workers.size(); ++i)
      if (st->spec.workers[i] == id)
        return st->workers[i];
    return {};
  };
  // Async: a gradient is applied on arrival when the parameters it was
  // computed on are at most `staleness` versions old, and refused otherwise;
  // either way its worker gets the current parameters back.
  auto async_result = [self, st, send_params, stream_to, worker_of](const msg::TaskResult& r,
                                                                    const std::string& sender) {
    GradientFrames frames;
    if (auto in = st->incoming.find(r.task_id); in != st->incoming.end()) {
      frames = std::move(in->second);
      st->incoming.erase(in);
    }
    if (!r.error_message.empty() || st->step >= st->spec.steps)
      return; // failed, or the job is done (late gradients change nothing)
    const auto worker = worker_of(sender);
    auto& g = st->model->grads();
    if (frames.floats != g.size() || !worker)
      return;
    const uint64_t lag =
        r.param_version <= st->version ? st->version - r.param_version : UINT64_MAX;
    if (lag > st->spec.staleness) {
      ++st->refused;
      send_params({worker});
      return;
    }
    const auto update_start = std::chrono::steady_clock::now();
    frames.add_to(g.data(), true);
    count_task(*st, sender);
    st->compute_ms = r.compute_ms;
    std::optional<ParamStream> stream;
    const auto sent = st->sent_to.find(worker.address());
    const double step_ms = sent != st->sent_to.end() ? ms_since(sent->second) : 0;
    if (st->step + 1 < st->spec.steps)
      stream = stream_to({worker});
    auto done = apply_step(*st, r.loss, r.tokens, update_start, stream ? &*stream : nullptr);
    done.staleness = static_cast<uint32_t>(lag);
    done.step_ms = step_ms;
    after_step(self, *st, done);
    link_send(self, st->scheduler, st->spec.scheduler, make_wire(me(self), done, st->job));
  };
  return {
      [self, st](job_init_atom, const wire& spec_wire, caf::actor scheduler,
                 std::vector<caf::actor> workers, bool resume) -> caf::result<wire> {
        auto in = read_spec(spec_wire);
        if (!in)
          return make_wire(me(self),
                           msg::ErrorReply{"malformed_message", "bad job spec", "jobSpec"});
        const auto& given = in->spec;
        st->job = in->job;
        st->workers = std::move(workers);
        st->scheduler = scheduler;
        st->done_per_worker.assign(st->workers.size(), 0);
        auto& ctx = node_context(self->home_system());
        std::optional<PsCheckpoint> restored;
        if (resume) {
          auto c = ctx.store ? ctx.store->latest_checkpoint(st->job)
                             : Result<Checkpoint>(make_error(Errc::not_found, "no store"));
          if (!c)
            return make_wire(me(self), msg::ErrorReply{"not_found", c.error().message, "jobSpec"});
          restored = decode_ps_checkpoint(c->state);
          if (!restored)
            return make_wire(me(self),
                             msg::ErrorReply{"corrupt",
                                             "the checkpoint of job " + st->job + " is unreadable",
                                             "jobSpec"});
          st->spec = restored->spec;
          if (given.steps)
            st->spec.steps = given.steps;
          st->spec.start_step = static_cast<uint32_t>(restored->step);
        } else {
          st->spec = given;
        }
        try {
          auto cfg = cp::GptConfig::from_json(nlohmann::json::parse(st->spec.model_config));
          st->model = std::make_unique<cp::Gpt>(cfg);
          st->model->init_weights(st->spec.seed);
          st->adam = std::make_unique<cp::AdamW>(
              st->model->specs(),
              cp::AdamWConfig{st->spec.beta1, st->spec.beta2, st->spec.eps, st->spec.weight_decay});
        } catch (const std::exception& e) {
          return make_wire(me(self), msg::ErrorReply{"invalid_argument", e.what(), "jobSpec"});
        }
        if (restored) {
          const size_t n = st->model->params().size();
          if (restored->params.size() != n || restored->m.size() != n || restored->v.size() != n)
            return make_wire(
                me(self),
                msg::ErrorReply{"corrupt", "the checkpoint does not fit the model", "jobSpec"});
          std::memcpy(st->model->params().data(), restored->params.data(), n * sizeof(float));
          std::memcpy(st->adam->m().data(), restored->m.data(), n * sizeof(float));
          std::memcpy(st->adam->v().data(), restored->v.data(), n * sizeof(float));
          st->adam->set_steps_taken(restored->adam_steps);
          st->step = static_cast<uint32_t>(restored->step);
          st->version = restored->step;
        }
        st->ready_tasks.assign(st->spec.micro_batches_per_step, 0);
        st->sum.reset(st->spec.micro_batches_per_step);
        // The reply is the job's spec as the parameter server runs it (for a
        // resumed job: the stored one, starting at the checkpoint's step).
        auto reply = make_wire(me(self), st->spec, st->job);
        if (st->workers.empty()) // export: nobody to talk to
          return reply;
        auto rp = self->make_response_promise<wire>();
        std::vector<std::string> peers = st->spec.workers;
        peers.push_back(st->spec.scheduler);
        std::vector<std::string> others;
        for (const auto& sat : st->spec.satellites)
          if (sat.id != me(self))
            others.push_back(sat.id);
        connect_all(
            self, st->spec, peers, "",
            [self, st, rp, reply, others](std::string err, std::vector<caf::actor>) mutable {
              if (!err.empty()) {
                rp.deliver(make_wire(me(self), msg::ErrorReply{"unreachable", err, "jobSpec"}));
                return;
              }
              // Store actors on the other satellites, for validation windows.
              connect_all(self, st->spec, others, "store",
                          [self, st, rp, reply, others](std::string,
                                                        std::vector<caf::actor> stores) mutable {
                            self->attach_functor([stores] {
                              for (const auto& a : stores)
                                if (a)
                                  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
                            });
                            st->peer_stores = peer_stores_of(others, stores);
                            rp.deliver(reply);
                          });
            });
        return rp;
      },
      [broadcast](job_start_atom) { broadcast(); },
      [self, st, send_params, stream_to, async_result](wire& w) {
        const bool async = st->spec.mode == "async";
        // The optimizer's OpenMP loops get the job's threads per satellite,
        // like the workers: more would spin against their compute threads.
        omp_set_num_threads(static_cast<int>(std::max<uint32_t>(1, st->spec.threads)));
        const size_t n = st->model ? st->model->params().size() : 0;
        // Gradient frames are kept as received (no copy) until their task's
        // result says the set is complete.
        if (auto frame = msg::decode_flat_frame(w.bytes.data(), w.bytes.size())) {
          if (frame->header.kind != msg::TensorKind::gradients ||
              (!async && frame->header.step != st->step))
            return;
          if (frame->total_floats != n) {
            log_warn("parameter server: gradient frame from " + frame->sender + " holds " +
                     std::to_string(frame->total_floats) + " floats, the model has " +
                     std::to_string(n));
            return;
          }
          auto& in = st->incoming[frame->header.task_id];
          // Frames of a set may not overlap (so floats == n means covered).
          for (const auto& f : in.frames)
            if (frame->offset_floats < f.offset + f.count &&
                f.offset < frame->offset_floats + frame->count)
              return;
          st->bytes_in += w.bytes.size();
          in.floats += frame->count;
          in.frames.push_back(
              {std::move(w.bytes), frame->offset_floats, frame->count, frame->data});
          // Sync: summed now if its turn has come (the buffer just moved
          // into `in` keeps the data where frame->data points).
          if (!async && frame->header.version == st->version)
            st->sum.offer(st->model->grads().data(), frame->header.task_id,
                          frame->header.micro_batch, frame->header.frame_index,
                          frame->header.frame_count, frame->offset_floats, frame->count,
                          frame->data);
          return;
        } else if (frame.error().code != Errc::invalid_argument) {
          log_warn("parameter server: malformed tensor frame: " + frame.error().message);
          return;
        }
        auto env = open_or_warn(w, "parameter server");
        if (!env)
          return;
        if (std::holds_alternative<msg::ParamsRequest>(env->body)) {
          send_params({caf::actor_cast<caf::actor>(self->current_sender())});
          return;
        }
        auto* r = std::get_if<msg::TaskResult>(&env->body);
        if (!r)
          return;
        if (async) {
          async_result(*r, env->sender);
          return;
        }
        auto in = st->incoming.find(r->task_id);
        // Late (another step), duplicate (re-assigned and both finished),
        // failed or incomplete results are dropped; task ids make this safe.
        const uint32_t mb = r->micro_batch;
        const uint32_t M = st->spec.micro_batches_per_step;
        if (r->step != st->step || !r->error_message.empty() || mb >= M || st->ready.count(mb) ||
            in == st->incoming.end() || in->second.floats != n || r->param_version != st->version) {
          if (in != st->incoming.end()) {
            st->sum.drop(r->task_id);
            st->incoming.erase(in);
          }
          return;
        }
        st->ready[mb] = std::move(in->second);
        st->ready_tasks[mb] = r->task_id;
        st->incoming.erase(in);
        st->losses[mb] = r->loss;
        st->tokens += r->tokens;
        st->compute_ms = std::max(st->compute_ms, r->compute_ms);
        count_task(*st, env->sender);
        if (st->ready.size() < M)
          return;
        // Every micro-batch is in. The frames were summed in micro-batch
        // order as they arrived (OrderedSum); only when the accepted tasks
        // are not the ones summed is the sum made here, in the same order.
        auto update_start = std::chrono::steady_clock::now();
        if (!st->sum.complete(st->ready_tasks)) {
          auto& g = st->model->grads();
          // The first is copied, not added to zeros: the same parameters
          // (x and 0 + x differ at most in the sign of a zero gradient,
          // which clipping and AdamW map to the same update).
          for (const auto& [k, frames] : st->ready)
            frames.add_to(g.data(), k == 0);
        }
        double loss = 0;
        for (const auto& [k, l] : st->losses)
          loss += l;
        const double step_ms = ms_since(st->sent_at);
        std::optional<ParamStream> stream;
        if (st->step + 1 < st->spec.steps)
          stream = stream_to(st->workers);
        auto done = apply_step(*st, loss / st->spec.micro_batches_per_step, st->tokens,
                               update_start, stream ? &*stream : nullptr);
        done.step_ms = step_ms;
        st->ready.clear();
        st->sum.reset(M);
        st->losses.clear();
        st->tokens = 0;
        st->incoming.clear();
        after_step(self, *st, done);
        link_send(self, st->scheduler, st->spec.scheduler, make_wire(me(self), done, st->job));
      },
  };
}

// ---- scheduler ---------------------------------------------------------------

namespace {

struct task_info {
  uint32_t step = 0;
  uint32_t micro_batch = 0;
  size_t worker = 0;
  std::vector<uint64_t> starts;
  std::chrono::steady_clock::time_point sent;
};

struct scheduler_state {
  msg::JobSpec spec;
  std::string job;
  std::vector<caf::actor> workers;
  std::vector<bool> alive;
  std::vector<uint32_t> load;           // tasks outstanding per worker
  std::vector<msg::LoadReport> reports; // the workers' latest load reports
  // Live workers by expected time to finish what they hold (tasks
  // outstanding x task time), kept up to date as loads and reports change:
  // choosing a worker walks it from the least loaded and stops early.
  std::set<std::pair<double, size_t>> by_load;
  std::vector<double> load_key;
  double known_ms = 0;               // the slowest task time any worker has reported
  std::vector<double> worker_rtt_ms; // per worker: moving average of task round trips
  double round_trip_ms = 0;          // moving average of task round trips
  uint32_t stragglers = 0;
  caf::actor ps, ground;
  msg::DatasetManifest manifest;
  std::unique_ptr<HashRing> ring;
  std::unique_ptr<cp::Rng> rng;
  uint64_t train_len = 0;
  uint64_t next_task = 1;
  std::map<uint64_t, task_info> outstanding;
  std::map<std::pair<uint64_t, uint32_t>, int> failures; // (step, micro-batch) -> failed tries
  uint32_t reassigned = 0;
  uint64_t next_index = 0;           // async: the next micro-batch to draw
  int64_t issued = -1;               // sync: the last step whose tasks went out
  std::set<uint32_t> issued_results; // sync: its micro-batches with a result
  bool ended = false;
  // Energy- and contact-aware scheduling (orbit/policy.hpp); the model is
  // this scheduler's own (one owner), null without [orbit].
  orbit::Policy policy = orbit::Policy::aware;
  std::unique_ptr<orbit::ConstellationModel> model;
  std::unique_ptr<orbit::SimClock> clock;
  orbit::PowerModel power;
  std::vector<int> slots; // per worker
  int ps_slot = -1;
  double model_wall = -1; // steady seconds of the model's last update
  struct parked_task {
    uint32_t step, micro_batch;
    std::vector<uint64_t> starts;
  };
  std::vector<parked_task> parked; // no worker may take them now (energy rule)
  uint64_t energy_deferrals = 0;
  // Workers that declined a task (their battery could not carry it): not
  // eligible until their next load report, which the energy rule judges.
  std::vector<bool> declined_by;
  uint32_t declined = 0; // tasks declined so far
};

// What the scheduler knows of each worker, for orbit::choose_worker; moves
// its model to the simulated now (at most every 100 ms).
// Re-files worker i in the scheduler's load order after its load, report
// or liveness changed.
void rekey(scheduler_state& st, size_t i) {
  st.by_load.erase({st.load_key[i], i});
  st.load_key[i] = st.load[i] * std::max(1.0, st.reports[i].step_time_ms);
  if (st.alive[i])
    st.by_load.insert({st.load_key[i], i});
}

// The simulated now, for the energy rule. Not the model's time, which lags
// it by up to 100 ms of wall time (6 s at time scale 60): a report sampled
// after that would count as sampled now, its worker as idle since, and the
// rule would pass where the worker's own guard, with the same charge and
// the true now, declines (which it did, back and forth, in the experiment).
double sim_now(const scheduler_state& st) {
  return st.clock ? st.clock->now() : 0;
}

// Moves the scheduler's model to the simulated now (at most every 100 ms).
void refresh_model(scheduler_state& st) {
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (st.model && wall - st.model_wall > 0.1) {
    st.model->update(st.clock->now());
    st.model_wall = wall;
  }
}

// Wall milliseconds the scheduler expects one task to keep worker i's
// compute thread busy: the longest of its recent tasks as it reports it,
// its moving averages of task time and round trip (a task occupies the
// compute thread, and so the battery, also while it waits there for
// parameters), or before its first report the slowest task time any worker
// reported (1 s before any).
double task_ms(const scheduler_state& st, size_t i, double known_ms) {
  const auto& r = st.reports[i];
  double ms = r.step_time_ms > 0 ? r.step_time_ms : known_ms > 0 ? known_ms : 1000;
  ms = std::max(ms, r.busy_max_ms);
  if (i < st.worker_rtt_ms.size())
    ms = std::max(ms, st.worker_rtt_ms[i]);
  return ms;
}

// What the scheduler knows of worker i, for orbit::choose_worker.
orbit::WorkerView view_of(const scheduler_state& st, size_t i,
                          const std::vector<std::string>& owners, double known_ms) {
  orbit::WorkerView w;
  {
    const auto& r = st.reports[i];
    w.alive = st.alive[i];
    w.load = st.load[i] * std::max(1.0, r.step_time_ms);
    w.holds_data = std::find(owners.begin(), owners.end(), st.spec.workers[i]) != owners.end();
    if (!st.model)
      return w;
    w.has_energy = r.has_energy;
    w.slot = st.slots[i];
    w.soc = r.state_of_charge;
    w.report_time = r.sim_time_s;
    w.sunlit = r.sunlit;
    w.ps_latency =
        w.slot >= 0 && st.ps_slot >= 0 ? st.model->latency(w.slot, st.ps_slot) : orbit::infinity;
    // The work a new task would end: the tasks it holds and the new one,
    // each at task_ms() (which includes the worker's longest recent task),
    // in simulated time, times the margin the worker's own guard uses too.
    w.task_s = orbit::energy_margin * (st.load[i] + 1) * task_ms(st, i, known_ms) / 1000 *
               st.clock->time_scale();
  }
  return w;
}

// Async: tasks kept in flight per live worker (one computing, one queued so
// the worker never waits for the scheduler).
constexpr uint32_t async_tasks_per_worker = 2;

} // namespace

caf::behavior job_scheduler_actor(caf::event_based_actor* self) {
  join_supervisor(self);
  auto st = std::make_shared<scheduler_state>();
  // The least loaded live worker, preferring one that holds the chunk where
  // the task's first window starts. Loads live in a small ordered set.
  // Priority by expected time to finish what a worker already has: tasks
  // outstanding times its reported task time (1 ms when not yet known); the
  // aware policy drops workers the energy rule forbids (*blocked: some are
  // alive, none may take it) and prefers sunlight and nearness to the
  // parameter server (orbit/policy.hpp).
  auto choose = [st](uint64_t first_start, bool* blocked) -> std::optional<size_t> {
    uint64_t off = 0;
    size_t chunk = 0;
    while (chunk + 1 < st->manifest.chunk_sizes.size() &&
           off + st->manifest.chunk_sizes[chunk] <= first_start)
      off += st->manifest.chunk_sizes[chunk++];
    auto owners = st->ring->owners(st->manifest.chunk_hashes[chunk],
                                   std::max<uint32_t>(1, st->manifest.replicas));
    // Walk the workers from the least loaded: the first eligible one sets
    // the least load; its equals are the candidates. (Eligible: any live
    // worker for the load policy; for the aware one, the energy and
    // contact rules of orbit/policy.hpp.)
    refresh_model(*st);
    const bool aware = st->policy == orbit::Policy::aware && st->model;
    const double now = sim_now(*st);
    const int cores = static_cast<int>(std::max<uint32_t>(1, st->spec.threads));
    std::vector<orbit::WorkerView> tier;
    std::vector<size_t> index;
    for (const auto& [key, i] : st->by_load) {
      if (!tier.empty() && key > tier.front().load)
        break;
      if (st->declined_by[i])
        continue;
      auto v = view_of(*st, i, owners, st->known_ms);
      if (aware && (!orbit::energy_allows(*st->model, st->power, v, now, v.task_s, cores) ||
                    !(v.ps_latency < orbit::infinity)))
        continue;
      tier.push_back(v);
      index.push_back(i);
    }
    auto c = orbit::choose_worker(st->policy, tier, st->model.get(), st->power, now, 0, cores);
    if (c.worker)
      c.worker = index[*c.worker];
    else
      c.energy_blocked = !st->by_load.empty();
    *blocked = c.energy_blocked;
    return c.worker;
  };
  // Sends a task to `to`, or to the best worker for it.
  auto send_task = [self, st, choose](uint32_t step, uint32_t mb, std::vector<uint64_t> starts,
                                      std::optional<size_t> to = std::nullopt) {
    bool blocked = false;
    auto w = to ? to : choose(starts.front(), &blocked);
    if (!w && blocked) { // held until a worker may take it (retried every tick)
      ++st->energy_deferrals;
      st->parked.push_back({step, mb, std::move(starts)});
      return true;
    }
    if (!w)
      return false;
    const uint64_t id = st->next_task++;
    msg::TaskAssignment t;
    t.task_id = id;
    t.step = step;
    t.micro_batch = mb;
    t.param_version = step; // sync: computed on the parameters after `step` steps
                            // (async: on whatever the worker has)
    t.dataset = st->spec.dataset;
    t.window_starts = starts;
    t.window_length = static_cast<uint32_t>(
        cp::GptConfig::from_json(nlohmann::json::parse(st->spec.model_config)).block_size + 1);
    // The aware policy tells the worker what it planned the task for; the
    // worker's guard uses it until it has timed tasks of its own.
    if (st->policy == orbit::Policy::aware && st->model)
      t.planned_s =
          orbit::energy_margin * task_ms(*st, *w, st->known_ms) / 1000 * st->clock->time_scale();
    st->outstanding[id] =
        task_info{step, mb, *w, std::move(starts), std::chrono::steady_clock::now()};
    ++st->load[*w];
    rekey(*st, *w);
    link_send(self, st->workers[*w], st->spec.workers[*w],
              make_wire(me(self), std::move(t), st->job));
    return true;
  };
  // The windows of micro-batch `index` (s*M + k for micro-batch k of step s
  // in sync mode), drawn exactly as train-local's get_batch draws that batch.
  auto windows_of = [st](uint64_t index) {
    const int T = cp::GptConfig::from_json(nlohmann::json::parse(st->spec.model_config)).block_size;
    const uint64_t windows = (st->train_len - 1) / static_cast<uint64_t>(T);
    std::vector<uint64_t> starts;
    for (uint32_t b = 0; b < st->spec.micro_batch; ++b) {
      if (st->spec.sampler == "sequential")
        starts.push_back(((index * st->spec.micro_batch + b) % windows) * uint64_t(T));
      else
        starts.push_back(st->rng->next_u64() % (st->train_len - static_cast<uint64_t>(T)));
    }
    return starts;
  };
  auto no_worker_left = [self, st] {
    st->ended = true;
    self->send(st->ground, job_end_atom_v,
               make_wire(me(self), msg::ErrorReply{"unreachable", "no worker is left", "job"}));
  };
  auto issue_step = [st, send_task, windows_of, no_worker_left](uint32_t s) {
    st->issued = s;
    st->issued_results.clear();
    for (uint32_t k = 0; k < st->spec.micro_batches_per_step; ++k)
      if (!send_task(s, k, windows_of(uint64_t{s} * st->spec.micro_batches_per_step + k))) {
        no_worker_left();
        return;
      }
  };
  // Async: keeps every live worker supplied with tasks: a worker that waits
  // for a task would compute on parameters older than it needs to.
  auto may_take = [st](size_t i) {
    if (st->declined_by[i])
      return false;
    if (st->policy != orbit::Policy::aware || !st->model)
      return true;
    refresh_model(*st);
    const auto v = view_of(*st, i, {}, st->known_ms);
    return v.ps_latency < orbit::infinity &&
           orbit::energy_allows(*st->model, st->power, v, sim_now(*st), v.task_s,
                                static_cast<int>(std::max<uint32_t>(1, st->spec.threads)));
  };
  auto keep_busy = [st, send_task, windows_of, no_worker_left, may_take] {
    if (st->ended)
      return;
    if (std::find(st->alive.begin(), st->alive.end(), true) == st->alive.end()) {
      no_worker_left();
      return;
    }
    for (size_t i = 0; i < st->workers.size(); ++i)
      while (st->alive[i] && st->load[i] < async_tasks_per_worker && may_take(i)) {
        const uint64_t index = st->next_index++;
        send_task(0, static_cast<uint32_t>(index), windows_of(index), i);
      }
  };
  // Tasks the energy rule held back: tried again on every tick and load report.
  auto retry_parked = [st, send_task, keep_busy] {
    auto parked = std::move(st->parked);
    st->parked.clear();
    for (auto& t : parked)
      send_task(t.step, t.micro_batch, std::move(t.starts));
    if (st->spec.mode == "async")
      keep_busy();
  };
  auto reassign = [st, send_task, no_worker_left](uint64_t id) {
    auto it = st->outstanding.find(id);
    if (it == st->outstanding.end())
      return;
    task_info t = it->second;
    st->outstanding.erase(it);
    if (st->load[t.worker] > 0)
      --st->load[t.worker];
    rekey(*st, t.worker);
    ++st->reassigned;
    log_warn("re-assigning task " + std::to_string(id) + " (step " + std::to_string(t.step) +
             ", micro-batch " + std::to_string(t.micro_batch) + ") of " +
             st->spec.workers[t.worker]);
    if (!send_task(t.step, t.micro_batch, t.starts))
      no_worker_left();
  };
  self->set_down_handler([self, st, reassign](caf::down_msg& dm) {
    for (size_t i = 0; i < st->workers.size(); ++i)
      if (st->alive[i] && st->workers[i].address() == dm.source) {
        st->alive[i] = false;
        rekey(*st, i);
        log_warn("worker on " + st->spec.workers[i] + " is gone: " + to_string(dm.reason));
        std::vector<uint64_t> mine;
        for (const auto& [id, t] : st->outstanding)
          if (t.worker == i)
            mine.push_back(id);
        for (auto id : mine)
          reassign(id);
      }
  });
  return {
      [self, st](job_init_atom, const wire& spec_wire, caf::actor ps,
                 std::vector<caf::actor> workers, caf::actor ground) -> caf::result<wire> {
        auto in = read_spec(spec_wire);
        if (!in)
          return make_wire(me(self),
                           msg::ErrorReply{"malformed_message", "bad job spec", "jobSpec"});
        st->spec = in->spec;
        st->job = in->job;
        st->ps = ps;
        st->ground = ground;
        st->workers = std::move(workers);
        st->alive.assign(st->workers.size(), true);
        st->load.assign(st->workers.size(), 0);
        st->reports.assign(st->workers.size(), msg::LoadReport{});
        st->worker_rtt_ms.assign(st->workers.size(), 0);
        st->load_key.assign(st->workers.size(), 0);
        st->declined_by.assign(st->workers.size(), false);
        for (size_t i = 0; i < st->workers.size(); ++i)
          rekey(*st, i);
        auto& ctx = node_context(self->home_system());
        auto m = ctx.store ? ctx.store->get_manifest(st->spec.dataset)
                           : Result<msg::DatasetManifest>(make_error(Errc::not_found, "no store"));
        if (!m)
          return make_wire(me(self), msg::ErrorReply{"not_found", m.error().message, "jobSpec"});
        st->manifest = std::move(*m);
        std::vector<std::string> ids;
        for (const auto& s : st->spec.satellites)
          ids.push_back(s.id);
        st->ring = std::make_unique<HashRing>(ids);
        st->rng = std::make_unique<cp::Rng>(st->spec.seed);
        st->policy = orbit::parse_policy(st->spec.scheduler_policy).value_or(orbit::Policy::aware);
        if (ctx.orbit) { // the scheduler's own model, for the energy rule and latencies
          const auto& file = ctx.orbit->file();
          st->model = std::make_unique<orbit::ConstellationModel>(orbit::model_spec(file));
          st->ps_slot = ctx.orbit->slot_of(st->spec.parameter_server);
          for (const auto& id : st->spec.workers)
            st->slots.push_back(ctx.orbit->slot_of(id));
          st->model->set_targets({st->ps_slot});
          st->clock = std::make_unique<orbit::SimClock>(
              job_wall, file.orbit->start(), file.orbit->time_scale, file.orbit->epoch_unix);
          st->power = orbit::power_model(file.energy);
        }
        st->train_len = st->manifest.total_bytes * 9 / 10;
        auto rp = self->make_response_promise<wire>();
        std::vector<std::string> peers = st->spec.workers;
        peers.push_back(st->spec.parameter_server);
        connect_all(
            self, st->spec, peers, "",
            [self, st, rp](std::string err, std::vector<caf::actor>) mutable {
              if (err.empty())
                for (auto& w : st->workers)
                  self->monitor(w);
              rp.deliver(err.empty()
                             ? make_wire(me(self), msg::StepDone{}, st->job)
                             : make_wire(me(self), msg::ErrorReply{"unreachable", err, "jobSpec"}));
            });
        return rp;
      },
      [self, st, issue_step, keep_busy](job_start_atom) {
        if (st->spec.mode == "async") {
          // Every gradient is a step: a resumed job continues the sequence
          // of micro-batches (random draws are fresh ones).
          st->next_index = st->spec.start_step;
          keep_busy();
        } else {
          // A resumed job replays the sampler's draws up to its first step.
          if (st->spec.sampler != "sequential")
            for (uint64_t k = 0; k < uint64_t{st->spec.start_step} *
                                         st->spec.micro_batches_per_step * st->spec.micro_batch;
                 ++k)
              (void)st->rng->next_u64();
          issue_step(st->spec.start_step);
        }
        self->delayed_send(self, std::chrono::seconds(1), tick_atom_v);
      },
      [self, st, reassign, retry_parked](tick_atom) {
        if (st->model && !st->ended)
          retry_parked();
        const auto now = std::chrono::steady_clock::now();
        std::vector<uint64_t> late;
        for (const auto& [id, t] : st->outstanding)
          if (now - t.sent > std::chrono::milliseconds(st->spec.task_timeout_ms))
            late.push_back(id);
        for (auto id : late)
          reassign(id);
        self->delayed_send(self, std::chrono::seconds(1), tick_atom_v);
      },
      [self, st, issue_step, reassign, keep_busy, retry_parked, send_task,
       no_worker_left](const wire& w) {
        auto env = open_or_warn(w, "scheduler");
        if (!env)
          return;
        if (auto* lr = std::get_if<msg::LoadReport>(&env->body)) {
          for (size_t i = 0; i < st->spec.workers.size(); ++i)
            if (st->spec.workers[i] == lr->worker) {
              st->reports[i] = *lr;
              st->declined_by[i] = false;
              st->known_ms = std::max(st->known_ms, lr->step_time_ms);
              rekey(*st, i);
            }
          if (st->model && !st->ended && (!st->parked.empty() || st->spec.mode == "async"))
            retry_parked();
          return;
        }
        if (auto* r = std::get_if<msg::TaskResult>(&env->body)) {
          if (r->declined) {
            // The worker's battery cannot carry the task: another worker
            // takes it (or it waits, parked, for one that may). Neither a
            // failure nor a straggler, and no round trip to learn from.
            auto it = st->outstanding.find(r->task_id);
            if (it == st->outstanding.end())
              return; // re-assigned meanwhile
            const task_info t = it->second;
            st->outstanding.erase(it);
            if (st->load[t.worker] > 0)
              --st->load[t.worker];
            st->declined_by[t.worker] = true;
            rekey(*st, t.worker);
            ++st->declined;
            if (!send_task(t.step, t.micro_batch, t.starts))
              no_worker_left();
            return;
          }
          if (!r->error_message.empty()) {
            log_warn("task " + std::to_string(r->task_id) + " failed on " + env->sender + ": " +
                     r->error_message);
            // Another worker may manage (e.g. it reaches a replica); give up
            // after a few tries, telling the ground why.
            if (st->outstanding.count(r->task_id)) {
              if (++st->failures[{r->step, r->micro_batch}] > 3)
                self->send(
                    st->ground, job_end_atom_v,
                    make_wire(me(self), msg::ErrorReply{"task_failed", r->error_message, "job"}));
              else
                reassign(r->task_id);
            }
            return;
          }
          auto it = st->outstanding.find(r->task_id);
          if (it != st->outstanding.end()) {
            // A straggler takes over three times the usual round trip.
            const double ms = std::chrono::duration<double, std::milli>(
                                  std::chrono::steady_clock::now() - it->second.sent)
                                  .count();
            if (st->round_trip_ms > 0 && ms > 3 * st->round_trip_ms && ms > 50) {
              ++st->stragglers;
              log_warn("straggler: task " + std::to_string(r->task_id) + " on " + env->sender +
                       " took " + std::to_string(static_cast<int>(ms)) + " ms (usual " +
                       std::to_string(static_cast<int>(st->round_trip_ms)) + " ms)");
            }
            st->round_trip_ms = st->round_trip_ms == 0 ? ms : 0.9 * st->round_trip_ms + 0.1 * ms;
            auto& rtt = st->worker_rtt_ms[it->second.worker];
            rtt = rtt == 0 ? ms : 0.8 * rtt + 0.2 * ms;
            if (st->load[it->second.worker] > 0)
              --st->load[it->second.worker];
            rekey(*st, it->second.worker);
            const auto t = it->second;
            st->outstanding.erase(it);
            // Sync: once every micro-batch of the step has a result, the
            // next step's tasks go out at once: workers then start as soon
            // as the first frames of the new parameters arrive, while the
            // parameter server's update is still streaming the rest.
            if (st->spec.mode != "async" && int64_t{t.step} == st->issued) {
              st->issued_results.insert(t.micro_batch);
              if (st->issued_results.size() == st->spec.micro_batches_per_step &&
                  t.step + 1 < st->spec.steps)
                issue_step(t.step + 1);
            }
          }
          if (st->spec.mode == "async")
            keep_busy();
          return;
        }
        if (auto* d = std::get_if<msg::StepDone>(&env->body)) {
          d->reassigned = st->reassigned;
          d->declined = st->declined;
          d->stragglers = st->stragglers;
          for (const auto& r : st->reports) {
            d->queue_depth.push_back(r.tasks_queued);
            d->task_time_ms.push_back(r.step_time_ms);
          }
          const bool async = st->spec.mode == "async";
          // Sync: tasks of the finished step still out are stale now.
          for (auto it = st->outstanding.begin(); !async && it != st->outstanding.end();)
            if (it->second.step <= d->step) {
              if (st->load[it->second.worker] > 0)
                --st->load[it->second.worker];
              rekey(*st, it->second.worker);
              it = st->outstanding.erase(it);
            } else {
              ++it;
            }
          self->send(st->ground, make_wire(me(self), *d, st->job));
          if (d->step + 1 < st->spec.steps) {
            if (!async && st->issued < int64_t{d->step} + 1)
              issue_step(d->step + 1);
          } else {
            st->ended = true;
            self->send(st->ground, job_end_atom_v, make_wire(me(self), *d, st->job));
          }
        }
      },
  };
}

} // namespace orbitrain
