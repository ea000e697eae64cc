// The ground station's side of a training job: checks everything it can
// before spawning anything (dataset, vocabulary against the model, every
// satellite reachable, roles placed on satellites of the file), spawns the
// parameter server, the scheduler and one worker per satellite remotely,
// wires them together, starts the job and follows it step by step, then
// fetches the final parameters.
#pragma once

#include "actors/ground.hpp"
#include "core/result.hpp"
#include "schemas/messages.hpp"

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace orbitrain {

struct TrainJobOptions {
  std::string job_id;
  std::string dataset;
  std::string model = "baby"; // built-in name or JSON config file
  uint32_t steps = 200;
  uint32_t micro_batch = 12;
  uint32_t micro_batches_per_step = 0; // 0: one per worker
  std::string mode = "sync";           // or "async"
  uint32_t staleness = 4;              // async: a gradient may lag at most this many versions
  std::string scheduler_policy = "aware"; // or "load" (orbit/policy.hpp)
  std::string sampler = "random";
  std::string precision = "f32";
  uint32_t threads = 1;
  uint64_t seed = 1337;
  float lr = 1e-3f, min_lr = 1e-4f;
  int32_t warmup = 100, decay_steps = -1;
  float beta1 = 0.9f, beta2 = 0.99f, eps = 1e-8f, weight_decay = 0.1f, grad_clip = 1.f;
  uint32_t checkpoint_every = 50; // 0: never
  uint32_t eval_every = 250;      // validation loss every E steps and at the end
  uint32_t eval_batches = 20;
  bool resume = false; // continue job `job_id` from its checkpoint
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds task_timeout{60000};
};

struct TrainJobResult {
  msg::JobSpec spec;
  std::vector<float> parameters; // final, in the compute engine's layout
  std::vector<uint8_t> vocabulary;
  uint32_t steps_done = 0;
  double last_loss = 0;
};

/// The final or latest parameters of job `job_id`, read from the
/// checkpoint on the parameter server's satellite.
Result<TrainJobResult> fetch_job_parameters(GroundStation& ground, const std::string& job_id,
                                            std::chrono::milliseconds timeout);

/// Called after every applied step.
using StepFn = std::function<void(const msg::StepDone&)>;

/// Runs the job to the end. If `*cancel` becomes true the job's actors are
/// stopped (the satellites keep running) and an error "cancelled" returned.
Result<TrainJobResult>
run_training(GroundStation& ground, const TrainJobOptions& options, const StepFn& on_step,
             const std::atomic<bool>* cancel,
             const std::function<void(const msg::JobSpec&)>& on_start = nullptr);

} // namespace orbitrain
