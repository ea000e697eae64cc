// Implementation of ground_train.hpp.
#include "actors/ground_train.hpp"

#include "actors/wire_message.hpp"
#include "compute/config.hpp"
#include "schemas/codec.hpp"

#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <cstring>
#include <nlohmann/json.hpp>

namespace orbitrain {

namespace {

using clock = std::chrono::steady_clock;

// The ok/error answer of a set-up request.
std::optional<std::string> setup_error(Result<msg::Envelope> r) {
  if (!r)
    return r.error().message;
  if (auto* e = std::get_if<msg::ErrorReply>(&r->body))
    return r->sender + ": " + e->message;
  return std::nullopt;
}

// Asks `ps` for its parameters and collects the frames.
Result<std::vector<float>> receive_parameters(caf::scoped_actor& self, const caf::actor& ps,
                                              const std::string& job) {
  self->send(ps, make_wire("ground", msg::ParamsRequest{}, job));
  msg::FrameAssembler frames;
  std::optional<Error> failure;
  bool got = false;
  while (!got && !failure) {
    self->receive(
        [&](wire& w) {
          auto e = open_wire(w);
          if (!e)
            return;
          if (auto* f = std::get_if<msg::TensorFrame>(&e->body)) {
            if (!frames.add(std::move(*f)).ok())
              failure = make_error(Errc::malformed_message, "bad parameter frames");
            else if (frames.complete())
              got = true;
          }
        },
        caf::after(std::chrono::seconds(60)) >>
            [&] {
              failure = make_error(Errc::timeout, "the parameter server sent no parameters");
            });
  }
  if (failure)
    return *failure;
  auto tensors = frames.take();
  if (!tensors || tensors->empty())
    return make_error(Errc::malformed_message, "no parameters received");
  const auto& t = (*tensors)[0];
  std::vector<float> out(t.data.size() / sizeof(float));
  std::memcpy(out.data(), t.data.data(), out.size() * sizeof(float));
  return out;
}

// The vocabulary of the job's dataset, from the manifest on `sat`'s store.
Result<std::vector<uint8_t>> job_vocabulary(GroundStation& ground, const SatelliteConfig& sat,
                                            const std::string& dataset,
                                            std::chrono::milliseconds timeout) {
  auto store = ground.spawn_on(sat, "store", timeout);
  if (!store)
    return store.error();
  auto m = ground.ask(*store, msg::ManifestRequest{dataset}, timeout);
  caf::anon_send_exit(*store, caf::exit_reason::user_shutdown);
  if (!m)
    return m.error();
  auto* list = std::get_if<msg::ManifestList>(&m->body);
  if (!list || list->manifests.empty())
    return make_error(Errc::not_found, "unknown dataset '" + dataset + "' (ingest it first)");
  return list->manifests.front().vocabulary;
}

} // namespace

Result<TrainJobResult> run_training(GroundStation& ground, const TrainJobOptions& o,
                                    const StepFn& on_step, const std::atomic<bool>* cancel,
                                    const std::function<void(const msg::JobSpec&)>& on_start) {
  const auto& c = ground.constellation();
  if (o.mode != "sync" && o.mode != "async")
    return make_error(Errc::invalid_argument, "--mode must be sync or async, not '" + o.mode + "'");
  if (!o.resume && (o.steps == 0 || o.micro_batch == 0))
    return make_error(Errc::invalid_argument, "--steps and --micro-batch must be positive");
  if (o.sampler != "random" && o.sampler != "sequential")
    return make_error(Errc::invalid_argument, "--sampler must be random or sequential");
  if (o.resume && o.job_id.empty())
    return make_error(Errc::invalid_argument, "--resume needs the job id");
  compute::GptConfig cfg;
  if (!o.resume) {
    try {
      cfg = compute::GptConfig::from_name_or_file(o.model);
    } catch (const std::exception& e) {
      return make_error(Errc::invalid_argument, std::string("--model: ") + e.what());
    }
  }

  // Every satellite must answer, and (for a new job) the dataset must be there.
  auto stores = ground.spawn_on_all("store", o.timeout);
  std::string down;
  for (size_t i = 0; i < stores.size(); ++i)
    if (!stores[i])
      down += "\n  " + stores[i].error().message;
  struct ExitAll {
    std::vector<Result<caf::actor>>& actors;
    ~ExitAll() {
      for (auto& a : actors)
        if (a)
          caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
    }
  } exit_stores{stores};
  if (!down.empty())
    return make_error(Errc::unreachable, "satellites are unreachable:" + down);
  const auto* ps_sat = c.find(c.job.parameter_server);
  const size_t ps_index = static_cast<size_t>(ps_sat - c.satellites.data());
  msg::JobSpec spec;
  if (!o.resume) {
    auto m = ground.ask(*stores[ps_index], msg::ManifestRequest{o.dataset}, o.timeout);
    if (!m)
      return m.error();
    auto* list = std::get_if<msg::ManifestList>(&m->body);
    if (!list || list->manifests.empty())
      return make_error(Errc::not_found, "unknown dataset '" + o.dataset + "' (ingest it first)");
    const auto& manifest = list->manifests.front();
    const int vocab = static_cast<int>(manifest.vocabulary.size());
    if (cfg.vocab_size != 0 && cfg.vocab_size != vocab)
      return make_error(Errc::invalid_argument, "model " + o.model + " has a vocabulary of " +
                                                    std::to_string(cfg.vocab_size) +
                                                    " but dataset '" + o.dataset + "' has " +
                                                    std::to_string(vocab) + " distinct bytes");
    cfg.vocab_size = vocab;
    if (manifest.total_bytes * 9 / 10 < static_cast<uint64_t>(cfg.block_size) + 2)
      return make_error(Errc::invalid_argument, "dataset '" + o.dataset +
                                                    "' is too small for block size " +
                                                    std::to_string(cfg.block_size));
    spec.dataset = o.dataset;
    spec.model_config = cfg.to_json().dump();
    spec.micro_batch = o.micro_batch;
    spec.micro_batches_per_step = o.micro_batches_per_step
                                      ? o.micro_batches_per_step
                                      : static_cast<uint32_t>(c.satellites.size());
    spec.seed = o.seed;
    spec.sampler = o.sampler;
    spec.precision = o.precision;
    spec.threads = o.threads;
    spec.lr = o.lr;
    spec.min_lr = o.min_lr;
    spec.warmup_steps = o.warmup;
    spec.decay_steps = o.decay_steps >= 0 ? o.decay_steps : static_cast<int32_t>(o.steps);
    spec.beta1 = o.beta1;
    spec.beta2 = o.beta2;
    spec.eps = o.eps;
    spec.weight_decay = o.weight_decay;
    spec.grad_clip = o.grad_clip;
    for (const auto& s : c.satellites) {
      spec.satellites.push_back({s.id, s.host, s.port});
      spec.workers.push_back(s.id);
    }
    spec.scheduler = c.job.scheduler;
    spec.parameter_server = c.job.parameter_server;
    spec.task_timeout_ms = static_cast<uint32_t>(o.task_timeout.count());
    spec.checkpoint_every = o.checkpoint_every;
    spec.eval_every = o.eval_every;
    spec.eval_batches = o.eval_batches;
    spec.mode = o.mode;
    spec.staleness = o.staleness;
    spec.scheduler_policy = o.scheduler_policy;
  } else {
    // Placeholders: the parameter server answers with the stored spec.
    spec.dataset = "?";
    spec.model_config = "{}";
    spec.micro_batch = 1;
    spec.micro_batches_per_step = 1;
  }
  spec.steps = o.steps; // for a resumed job, 0 keeps its own

  // Spawn the job's actors.
  std::vector<caf::actor> workers;
  for (const auto& s : c.satellites) {
    auto w = ground.spawn_on(s, "worker", o.timeout);
    if (!w)
      return w.error();
    workers.push_back(*w);
  }
  auto ps = ground.spawn_on(*ps_sat, "ps", o.timeout);
  if (!ps)
    return ps.error();
  auto sched = ground.spawn_on(*c.find(c.job.scheduler), "scheduler", o.timeout);
  if (!sched)
    return sched.error();
  auto& sys = ground.system();
  auto stop_all = [&] {
    for (auto& w : workers)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(*ps, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(*sched, caf::exit_reason::user_shutdown);
  };
  caf::scoped_actor self{sys};
  // With a ground link every message to and from the satellites waits for a
  // route through a satellite in contact (GroundStation::hold).
  const auto contact_horizon = std::chrono::minutes(10);
  auto hold = [&](const std::string& id, uint64_t bytes) -> std::optional<std::string> {
    auto h = ground.hold(id, bytes, contact_horizon);
    if (!h)
      return h.error().message;
    return std::nullopt;
  };
  // The parameter server first: for a resumed job it holds the spec.
  {
    std::optional<std::string> err = hold(spec.parameter_server, 4096);
    if (!err)
      self->request(*ps, std::chrono::seconds(60),
                    caf::make_message(job_init_atom_v, make_wire("ground", spec, o.job_id), *sched,
                                      workers, o.resume))
          .receive(
              [&](wire& w) {
                auto e = open_wire(w);
                if (e && std::holds_alternative<msg::JobSpec>(e->body))
                  spec = std::get<msg::JobSpec>(e->body);
                else
                  err = setup_error(std::move(e)).value_or("unexpected reply");
              },
              [&](caf::error& e) { err = "set-up failed: " + sys.render(e); });
    if (err) {
      stop_all();
      return make_error(o.resume ? Errc::not_found : Errc::unreachable,
                        "parameter server: " + *err);
    }
  }
  if (spec.workers.size() != workers.size()) {
    stop_all();
    return make_error(Errc::invalid_argument,
                      "job " + o.job_id + " ran on " + std::to_string(spec.workers.size()) +
                          " satellites, this constellation has " + std::to_string(workers.size()));
  }
  auto ask_setup = [&](const caf::actor& to, const std::string& id,
                       caf::message m) -> std::optional<std::string> {
    if (auto err = hold(id, 4096))
      return err;
    std::optional<std::string> err;
    self->request(to, std::chrono::seconds(60), std::move(m))
        .receive([&](wire& w) { err = setup_error(open_wire(w)); },
                 [&](caf::error& e) { err = "set-up failed: " + sys.render(e); });
    return err;
  };
  const wire spec_wire = make_wire("ground", spec, o.job_id);
  for (size_t i = 0; i < workers.size(); ++i)
    if (auto err = ask_setup(workers[i], c.satellites[i].id,
                             caf::make_message(job_init_atom_v, spec_wire, *sched, *ps))) {
      stop_all();
      return make_error(Errc::unreachable, "worker on " + c.satellites[i].id + ": " + *err);
    }
  if (auto err = ask_setup(*sched, spec.scheduler,
                           caf::make_message(job_init_atom_v, spec_wire, *ps, workers,
                                             caf::actor_cast<caf::actor>(self)))) {
    stop_all();
    return make_error(Errc::unreachable, "scheduler: " + *err);
  }
  if (on_start)
    on_start(spec);
  // Losing the parameter server or the scheduler ends the job at once.
  self->monitor(*ps);
  self->monitor(*sched);
  (void)hold(spec.parameter_server, 64);
  self->send(*ps, job_start_atom_v);
  (void)hold(spec.scheduler, 64);
  self->send(*sched, job_start_atom_v);

  TrainJobResult result;
  result.spec = spec;
  result.steps_done = spec.start_step;
  bool finished = spec.start_step >= spec.steps;
  std::optional<Error> failure;
  auto last_progress = clock::now();
  const auto stall =
      std::max<std::chrono::milliseconds>(o.task_timeout * 3, std::chrono::minutes(2));
  while (!finished && !failure) {
    self->receive(
        [&](wire& w) {
          (void)hold(spec.scheduler, w.bytes.size()); // the way down
          auto e = open_wire(w);
          if (e)
            if (auto* d = std::get_if<msg::StepDone>(&e->body)) {
              result.steps_done = d->step + 1;
              result.last_loss = d->loss;
              last_progress = clock::now();
              if (on_step)
                on_step(*d);
            }
        },
        [&](caf::down_msg& dm) {
          failure = make_error(
              Errc::unreachable,
              std::string(dm.source == ps->address() ? "the parameter server" : "the scheduler") +
                  " was lost (" + sys.render(dm.reason) + "); continue with --resume " + o.job_id);
        },
        [&](job_end_atom, wire& w) {
          (void)hold(spec.scheduler, w.bytes.size());
          auto e = open_wire(w);
          if (e && std::holds_alternative<msg::ErrorReply>(e->body))
            failure = make_error(Errc::unreachable,
                                 "the job failed: " + std::get<msg::ErrorReply>(e->body).message);
          finished = true;
        },
        caf::after(std::chrono::milliseconds(200)) >>
            [&] {
              if (cancel && cancel->load())
                failure = make_error(Errc::timeout, "cancelled");
              else if (clock::now() - last_progress > stall)
                failure =
                    make_error(Errc::timeout, "no step finished for " +
                                                  std::to_string(stall.count() / 1000) + " s");
            });
  }
  if (failure) {
    stop_all();
    return *failure;
  }
  auto params = receive_parameters(self, *ps, o.job_id);
  stop_all();
  if (!params)
    return params.error();
  result.parameters = std::move(*params);
  auto vocab = job_vocabulary(ground, *ps_sat, spec.dataset, o.timeout);
  if (!vocab)
    return vocab.error();
  result.vocabulary = std::move(*vocab);
  return result;
}

Result<TrainJobResult> fetch_job_parameters(GroundStation& ground, const std::string& job_id,
                                            std::chrono::milliseconds timeout) {
  const auto& c = ground.constellation();
  const auto* ps_sat = c.find(c.job.parameter_server);
  auto ps = ground.spawn_on(*ps_sat, "ps", timeout);
  if (!ps)
    return ps.error();
  caf::scoped_actor self{ground.system()};
  msg::JobSpec spec;
  spec.dataset = "?";
  spec.model_config = "{}";
  spec.micro_batch = 1;
  spec.micro_batches_per_step = 1;
  std::optional<Error> err;
  self->request(*ps, std::chrono::seconds(60),
                caf::make_message(job_init_atom_v, make_wire("ground", spec, job_id), caf::actor{},
                                  std::vector<caf::actor>{}, true))
      .receive(
          [&](wire& w) {
            auto e = open_wire(w);
            if (e && std::holds_alternative<msg::JobSpec>(e->body))
              spec = std::get<msg::JobSpec>(e->body);
            else
              err = make_error(Errc::not_found,
                               setup_error(std::move(e)).value_or("unexpected reply"));
          },
          [&](caf::error& e) { err = make_error(Errc::unreachable, ground.system().render(e)); });
  if (err) {
    caf::anon_send_exit(*ps, caf::exit_reason::user_shutdown);
    return *err;
  }
  auto params = receive_parameters(self, *ps, job_id);
  caf::anon_send_exit(*ps, caf::exit_reason::user_shutdown);
  if (!params)
    return params.error();
  TrainJobResult r;
  r.spec = spec;
  r.steps_done = spec.start_step;
  r.parameters = std::move(*params);
  auto vocab = job_vocabulary(ground, *ps_sat, spec.dataset, timeout);
  if (!vocab)
    return vocab.error();
  r.vocabulary = std::move(*vocab);
  return r;
}

} // namespace orbitrain
