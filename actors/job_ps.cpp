// The job's parameter server (job_actors.hpp).
#include "actors/job_actors.hpp"
#include "actors/job_common.hpp"
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
#include "schemas/codec.hpp"
#include "storage/hash_ring.hpp"
#include "storage/store.hpp"
#include "storage/window_reader.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <omp.h>

namespace orbitrain {

using namespace job;
using namespace std::chrono_literals;

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
          return bad_spec_reply(self);
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
        const std::vector<std::string> others = other_satellites(self, st->spec);
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
                            st->peer_stores = adopt_peer_stores(self, others, stores);
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

} // namespace orbitrain
