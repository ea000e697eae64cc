// The job's worker (job_actors.hpp): its actor and its compute thread.
#include "actors/job_actors.hpp"
#include "actors/job_common.hpp"
#include "actors/link_layer.hpp"
#include "actors/runtime.hpp"
#include "actors/satellite_actors.hpp"
#include "actors/tensor_exchange.hpp"
#include "actors/wire_message.hpp"
#include "compute/model.hpp"
#include "compute/tokenizer.hpp"
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
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <cmath>
#include <deque>
#include <nlohmann/json.hpp>
#include <omp.h>

namespace orbitrain {

using namespace job;
using namespace std::chrono_literals;

namespace {

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
          return bad_spec_reply(self);
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
              wall_clock(), file.orbit->start(), file.orbit->time_scale, file.orbit->epoch_unix);
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
        const std::vector<std::string> peers = other_satellites(self, st->spec);
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
                            st->compute = self->spawn<caf::detached + caf::linked>(
                                compute_actor, caf::actor_cast<caf::actor>(self), st->ps, spec_wire,
                                adopt_peer_stores(self, peers, stores), st->landing);
                            rp.deliver(make_wire(me(self), msg::StepDone{}, st->job));
                            self->delayed_send(self, std::chrono::seconds(3), tick_atom_v);
                          });
            });
        return rp;
      },
      [self, st, dispatch](const wire& w) {
        // Parameter frames go straight to the landing, where the compute
        // thread takes them as forward needs them. The landing keeps the
        // message itself (shared with the other workers the server sent it
        // to, never copied) until the next version replaces it.
        auto frame = msg::decode_flat_frame(w.bytes.data(), w.bytes.size());
        if (frame) {
          if (frame->header.kind != msg::TensorKind::parameters)
            return;
          // (A message sent as a caf::message, as the server sends frames,
          // shares its data with this copy; should it be a real copy, the
          // view is taken again, into the one that is kept.)
          auto keep = std::make_shared<const caf::message>(
              self->current_mailbox_element()->copy_content_to_message());
          if (const auto& kept = keep->get_as<wire>(0); &kept != &w) {
            frame = msg::decode_flat_frame(kept.bytes.data(), kept.bytes.size());
            if (!frame)
              return;
          }
          if (!st->landing->land(*frame, keep)) {
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

} // namespace orbitrain
