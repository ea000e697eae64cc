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

} // namespace

Result<TrainJobResult> run_training(GroundStation& ground, const TrainJobOptions& o,
                                    const StepFn& on_step, const std::atomic<bool>* cancel) {
  const auto& c = ground.constellation();
  if (o.mode != "sync")
    return make_error(Errc::invalid_argument,
                      "--mode " + o.mode + " is not supported yet (sync is)");
  if (o.steps == 0 || o.micro_batch == 0)
    return make_error(Errc::invalid_argument, "--steps and --micro-batch must be positive");
  if (o.sampler != "random" && o.sampler != "sequential")
    return make_error(Errc::invalid_argument, "--sampler must be random or sequential");
  compute::GptConfig cfg;
  try {
    cfg = compute::GptConfig::from_name_or_file(o.model);
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_argument, std::string("--model: ") + e.what());
  }

  // Every satellite must answer, and the dataset must be there.
  auto stores = ground.spawn_on_all("store", o.timeout);
  std::string down;
  for (size_t i = 0; i < stores.size(); ++i)
    if (!stores[i])
      down += "\n  " + stores[i].error().message;
  if (!down.empty())
    return make_error(Errc::unreachable, "satellites are unreachable:" + down);
  const auto* ps_sat = c.find(c.job.parameter_server);
  size_t ps_index = static_cast<size_t>(ps_sat - c.satellites.data());
  auto m = ground.ask(*stores[ps_index], msg::ManifestRequest{o.dataset}, o.timeout);
  if (!m)
    return m.error();
  auto* list = std::get_if<msg::ManifestList>(&m->body);
  if (!list || list->manifests.empty())
    return make_error(Errc::not_found, "unknown dataset '" + o.dataset + "' (ingest it first)");
  const auto manifest = list->manifests.front();
  const int vocab = static_cast<int>(manifest.vocabulary.size());
  if (cfg.vocab_size != 0 && cfg.vocab_size != vocab)
    return make_error(Errc::invalid_argument, "model " + o.model + " has a vocabulary of " +
                                                  std::to_string(cfg.vocab_size) +
                                                  " but dataset '" + o.dataset + "' has " +
                                                  std::to_string(vocab) + " distinct bytes");
  cfg.vocab_size = vocab;
  const uint64_t train_len = manifest.total_bytes * 9 / 10;
  if (train_len < static_cast<uint64_t>(cfg.block_size) + 2)
    return make_error(Errc::invalid_argument, "dataset '" + o.dataset +
                                                  "' is too small for block size " +
                                                  std::to_string(cfg.block_size));

  msg::JobSpec spec;
  spec.dataset = o.dataset;
  spec.model_config = cfg.to_json().dump();
  spec.steps = o.steps;
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
  const wire spec_wire = make_wire("ground", spec, o.job_id);

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
  auto ask_setup = [&](const caf::actor& to, caf::message m) -> std::optional<std::string> {
    std::optional<std::string> err;
    self->request(to, std::chrono::seconds(60), std::move(m))
        .receive([&](wire& w) { err = setup_error(open_wire(w)); },
                 [&](caf::error& e) { err = "set-up failed: " + sys.render(e); });
    return err;
  };
  for (size_t i = 0; i < workers.size(); ++i)
    if (auto err =
            ask_setup(workers[i], caf::make_message(job_init_atom_v, spec_wire, *sched, *ps))) {
      stop_all();
      return make_error(Errc::unreachable, "worker on " + c.satellites[i].id + ": " + *err);
    }
  if (auto err = ask_setup(*ps, caf::make_message(job_init_atom_v, spec_wire, *sched, workers))) {
    stop_all();
    return make_error(Errc::unreachable, "parameter server: " + *err);
  }
  if (auto err = ask_setup(*sched, caf::make_message(job_init_atom_v, spec_wire, *ps, workers,
                                                     caf::actor_cast<caf::actor>(self)))) {
    stop_all();
    return make_error(Errc::unreachable, "scheduler: " + *err);
  }
  self->send(*ps, job_start_atom_v);
  self->send(*sched, job_start_atom_v);

  TrainJobResult result;
  result.spec = spec;
  result.vocabulary = manifest.vocabulary;
  bool finished = false;
  std::optional<Error> failure;
  auto last_progress = clock::now();
  const auto stall =
      std::max<std::chrono::milliseconds>(o.task_timeout * 3, std::chrono::minutes(2));
  while (!finished && !failure) {
    self->receive(
        [&](wire& w) {
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
        [&](job_end_atom, wire& w) {
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
  // The final parameters.
  self->send(*ps, make_wire("ground", msg::ParamsRequest{}, o.job_id));
  msg::FrameAssembler frames;
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
  stop_all();
  if (failure)
    return *failure;
  auto tensors = frames.take();
  if (!tensors || tensors->empty())
    return make_error(Errc::malformed_message, "no parameters received");
  const auto& t = (*tensors)[0];
  result.parameters.resize(t.data.size() / sizeof(float));
  std::memcpy(result.parameters.data(), t.data.data(), result.parameters.size() * sizeof(float));
  return result;
}

} // namespace orbitrain
