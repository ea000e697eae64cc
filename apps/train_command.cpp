// Implementation of train_command.hpp: options, the live progress lines, the
// metrics file (JSON lines) and the final model.
#include "apps/train_command.hpp"

#include "actors/ground_train.hpp"
#include "apps/cli_util.hpp"
#include "apps/progress.hpp"
#include "compute/model.hpp"
#include "compute/safetensors.hpp"
#include "compute/tokenizer.hpp"

#include <atomic>
#include <csignal>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

namespace orbitrain {

namespace {

std::atomic<bool> cancel_requested{false};

void on_signal(int) {
  cancel_requested = true;
}

// Saves a job's parameters as a safetensors model.
void write_model(const std::string& path, const TrainJobResult& r) {
  auto cfg = compute::GptConfig::from_json(nlohmann::json::parse(r.spec.model_config));
  compute::Gpt model(cfg);
  if (model.params().size() != r.parameters.size())
    fail("the parameter server sent " + std::to_string(r.parameters.size()) +
         " parameters, the model has " + std::to_string(model.params().size()));
  std::memcpy(model.params().data(), r.parameters.data(), r.parameters.size() * sizeof(float));
  compute::save_model(path, model, compute::Tokenizer(r.vocabulary));
}

struct Args {
  std::string config, timeout = "10s", out, metrics, ground_station;
  int log_every = 1;
  TrainJobOptions job;
};

} // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model across the constellation");
  auto a = std::make_shared<Args>();
  auto& j = a->job;
  cmd->add_option("--config,-c", a->config, "Constellation file")->required();
  auto resume = std::make_shared<std::string>();
  cmd->add_option("--dataset,-d", j.dataset, "Dataset to train on (see `ingest`)");
  cmd->add_option("--resume", *resume,
                  "Continue job ID from its last checkpoint (its settings are kept; --steps "
                  "can extend it)");
  cmd->add_option("--checkpoint-every", j.checkpoint_every,
                  "Checkpoint every K steps on the parameter server's satellite (0: never)")
      ->capture_default_str();
  cmd->add_option("--model", j.model, "baby, small or a JSON config file")->capture_default_str();
  cmd->add_option("--steps", j.steps, "Optimizer steps")->capture_default_str();
  cmd->add_option("--micro-batch", j.micro_batch, "Sequences per micro-batch (task)")
      ->capture_default_str();
  cmd->add_option("--micro-batches-per-step", j.micro_batches_per_step,
                  "Micro-batches per step (default: one per satellite)");
  cmd->add_option("--mode", j.mode,
                  "sync (a step sums M micro-batches, as train-local) or async (every gradient "
                  "is applied on arrival if at most --staleness versions old)")
      ->capture_default_str();
  cmd->add_option("--staleness", j.staleness,
                  "Async: refuse gradients computed on parameters more than S versions old")
      ->capture_default_str();
  cmd->add_option("--scheduler", j.scheduler_policy,
                  "aware (never below the battery's depth-of-discharge limit; prefers sunlit "
                  "satellites close to the parameter server) or load (load only); the same "
                  "without [orbit]")
      ->check(CLI::IsMember({"aware", "load"}))
      ->capture_default_str();
  cmd->add_option("--sampler", j.sampler, "random or sequential windows, as train-local")
      ->capture_default_str();
  cmd->add_option("--precision", j.precision, "f32 or bf16 matmuls")->capture_default_str();
  cmd->add_option("--threads", j.threads, "Compute threads per worker")->capture_default_str();
  cmd->add_option("--seed", j.seed, "Seed of the initial weights and the sampler")
      ->capture_default_str();
  cmd->add_option("--lr", j.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr", j.min_lr, "Learning rate after cosine decay")->capture_default_str();
  cmd->add_option("--warmup", j.warmup, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--decay-steps", j.decay_steps, "Cosine decay ends here (default: --steps)");
  cmd->add_option("--weight-decay", j.weight_decay, "AdamW weight decay")->capture_default_str();
  cmd->add_option("--beta1", j.beta1, "AdamW beta1")->capture_default_str();
  cmd->add_option("--beta2", j.beta2, "AdamW beta2")->capture_default_str();
  cmd->add_option("--eps", j.eps, "AdamW eps")->capture_default_str();
  cmd->add_option("--grad-clip", j.grad_clip, "Max gradient norm (0: off)")->capture_default_str();
  cmd->add_option("--eval-every", j.eval_every, "Validation loss every E steps (0: at the end)")
      ->capture_default_str();
  cmd->add_option("--eval-batches", j.eval_batches, "Validation batches per evaluation")
      ->capture_default_str();
  cmd->add_option("--job", j.job_id, "Job id (default: a new one)");
  cmd->add_option("--out", a->out, "Write the trained model here (safetensors)");
  cmd->add_option("--metrics", a->metrics, "Write one JSON line per step here");
  cmd->add_option("--log-every", a->log_every, "Print a line every N steps")->capture_default_str();
  cmd->add_option("--timeout", a->timeout, "Give up on a satellite after this long")
      ->capture_default_str();
  cmd->add_option("--ground-station", a->ground_station,
                  "With [orbit]: talk through this ground station (default: the file's first; "
                  "none: directly)");
  auto* steps_opt = cmd->get_option("--steps");
  cmd->callback([a, resume, steps_opt] {
    auto c = load_or_fail(a->config);
    if (!resume->empty()) {
      a->job.resume = true;
      a->job.job_id = *resume;
      if (steps_opt->count() == 0)
        a->job.steps = 0; // keep the job's own
    } else if (a->job.dataset.empty()) {
      fail("--dataset is required (or --resume JOB)", 2);
    }
    a->job.timeout = duration_or_fail(a->timeout, "--timeout");
    if (a->job.job_id.empty())
      a->job.job_id = fmt::format("job-{}", std::chrono::duration_cast<std::chrono::seconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
    std::ofstream metrics;
    if (!a->metrics.empty()) {
      metrics.open(a->metrics);
      if (!metrics)
        fail("cannot write " + a->metrics, 2);
    }
    GroundStation ground(c);
    if (!a->ground_station.empty())
      if (auto g = ground.use_ground_station(a->ground_station); !g)
        fail(g.error().message, 2);
    const auto t0 = std::chrono::steady_clock::now();
    cancel_requested = false;
    auto old_int = std::signal(SIGINT, on_signal);
    auto old_term = std::signal(SIGTERM, on_signal);
    std::uint32_t total_steps = a->job.steps;
    bool async = a->job.mode == "async";
    StepBar bar;
    auto r = run_training(
        ground, a->job,
        [&](const msg::StepDone& d) {
          const double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const uint32_t done = d.step + 1;
          const double eta = secs / done * (total_steps > done ? total_steps - done : 0);
          bar.update(done, total_steps,
                     fmt::format("loss {:.3f}{} {:.0f} tok/s", d.loss,
                                 d.val_loss ? fmt::format(" val {:.3f}", *d.val_loss) : "",
                                 d.tokens / std::max(1e-9, secs / done)));
          if (d.val_loss || (a->log_every > 0 &&
                             (done % a->log_every == 0 || done == total_steps || done == 1))) {
            bar.clear();
            std::string tasks;
            for (auto t : d.tasks_per_worker)
              tasks += (tasks.empty() ? "" : "/") + std::to_string(t);
            std::cout << fmt::format(
                             "step {:>5}/{} loss {:.4f}{} lr {:.2e} norm {:.3f} "
                             "{:.0f} tok/s tasks {}{} ETA {:.0f}s\n",
                             done, total_steps, d.loss,
                             d.val_loss ? fmt::format(" val {:.4f}", *d.val_loss) : "", d.lr,
                             d.grad_norm, d.tokens / std::max(1e-9, secs / done), tasks,
                             async ? fmt::format(" stale {} refused {}", d.staleness, d.refused)
                                   : "",
                             eta)
                      << std::flush;
          }
          if (metrics.is_open())
            metrics << nlohmann::json{{"step", done},
                                      {"train_loss", d.loss},
                                      {"val_loss", d.val_loss ? nlohmann::json(*d.val_loss)
                                                              : nlohmann::json(nullptr)},
                                      {"lr", d.lr},
                                      {"grad_norm", d.grad_norm},
                                      {"tokens", d.tokens},
                                      {"elapsed_s", secs},
                                      {"tasks_per_worker", d.tasks_per_worker},
                                      {"queue_depth", d.queue_depth},
                                      {"stragglers", d.stragglers},
                                      {"task_time_ms", d.task_time_ms},
                                      {"reassigned", d.reassigned},
                                      {"staleness", d.staleness},
                                      {"refused", d.refused},
                                      {"declined", d.declined},
                                      {"step_ms", d.step_ms},
                                      {"compute_ms", d.compute_ms},
                                      {"update_ms", d.update_ms},
                                      {"bytes_in", d.bytes_in},
                                      {"bytes_out", d.bytes_out}}
                           .dump()
                    << std::endl;
        },
        &cancel_requested,
        [&](const msg::JobSpec& spec) {
          total_steps = spec.steps;
          async = spec.mode == "async";
          std::cout << fmt::format("job {}: dataset {} across {} satellites (ps {}, scheduler "
                                   "{}), {} mode, steps {}..{}, checkpoint every {}\n",
                                   a->job.job_id, spec.dataset, c.satellites.size(),
                                   c.job.parameter_server, c.job.scheduler,
                                   spec.mode == "async"
                                       ? fmt::format("async (staleness <= {})", spec.staleness)
                                       : std::string("sync"),
                                   spec.start_step + 1, spec.steps, spec.checkpoint_every)
                    << std::flush;
        });
    bar.finish();
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
    if (!r)
      fail(r.error().message, r.error().code == Errc::invalid_argument ? 2 : 1);
    std::cout << fmt::format("job {} finished: {} steps, final train loss {:.4f}\n", a->job.job_id,
                             r->steps_done, r->last_loss);
    if (!a->out.empty()) {
      write_model(a->out, *r);
      std::cout << "model written to " << a->out << "\n";
    }
  });
}

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "Write a job's final or latest model (its checkpoint) as safetensors");
  auto config = std::make_shared<std::string>();
  auto job = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto timeout = std::make_shared<std::string>("10s");
  cmd->add_option("--config,-c", *config, "Constellation file")->required();
  cmd->add_option("--job", *job, "Job id")->required();
  cmd->add_option("--out", *out, "Model file to write")->required();
  cmd->add_option("--timeout", *timeout, "Give up on a satellite after this long")
      ->capture_default_str();
  cmd->callback([config, job, out, timeout] {
    auto c = load_or_fail(*config);
    GroundStation ground(c);
    auto r = fetch_job_parameters(ground, *job, duration_or_fail(*timeout, "--timeout"));
    if (!r)
      fail(r.error().message);
    write_model(*out, *r);
    std::cout << "job " << *job << " at step " << r->steps_done << " written to " << *out << "\n";
  });
}

} // namespace orbitrain
