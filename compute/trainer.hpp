// Single-process training on top of Gpt: batching (random or sequential
// windows of the token stream), the train/val split, the training loop with
// gradient accumulation in a fixed order, loss evaluation and sampling. The
// `train-local`, `eval` and `generate` commands and the benchmark are thin
// wrappers around these.
#pragma once

#include "compute/model.hpp"
#include "compute/optimizer.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace orbitrain::compute {

enum class Sampler { random, sequential };
[[nodiscard]] Sampler parse_sampler(const std::string& s); // "random" | "sequential"

// First 90% of the tokens train, the last 10% validate (nanoGPT's split).
struct Split {
  std::vector<int32_t> train, val;
};
[[nodiscard]] Split split_90_10(const std::vector<int32_t>& tokens);

// Fills x, y (B,T) with windows of data and their next tokens. sequential:
// window b of batch `index` starts at ((index*B + b) mod W) * T, W being the
// number of whole windows, (len-1)/T. random: starts uniform in [0, len-T-1]
// drawn from rng. Throws if data has fewer than T+1 tokens.
void get_batch(std::vector<int32_t>& x, std::vector<int32_t>& y, const std::vector<int32_t>& data,
               Sampler sampler, int64_t index, int B, int T, Rng& rng);

// Mean loss over n_batches sequential batches (B,T) of data, starting at batch 0.
[[nodiscard]] double evaluate(Gpt& model, const std::vector<int32_t>& data, int B, int T,
                              int n_batches);

struct TrainOptions {
  int steps = 2000;
  int batch = 12;
  int accum = 1; // micro-batches per step
  LrSchedule schedule;
  AdamWConfig adamw;
  float grad_clip = 1.f;
  int eval_every = 250;  // 0: never (except the final evaluation)
  int eval_batches = 20; // sequential val batches per evaluation
  Sampler sampler = Sampler::random;
  uint64_t seed = 1337; // data sampling
};

struct StepReport {
  int step = 0; // 1-based count of steps done
  double loss = 0;
  float lr = 0;
  double grad_norm = 0;
  double tokens_per_s = 0;
  std::optional<double> val_loss;
};

// sum (n) += g, element by element. The training loop sums micro-batch
// gradients with this, in micro-batch order, into a zeroed buffer; a
// parameter server that sums its workers' gradients (each computed with
// backward(nullptr, 1/K) on zeroed gradients) the same way, in the same order,
// gets bit-identical results.
void accumulate_gradients(float* sum, const float* g, size_t n);

// out (n) = a + b, element by element: the same floats as copying a into out
// and then accumulate_gradients(out, b, n), in one pass instead of two.
void add_gradients(float* out, const float* a, const float* b, size_t n);

// Trains model on split.train for opts.steps steps; evaluates on split.val
// every eval_every steps and after the last one. report is called after
// every step. Returns the last report.
StepReport train(Gpt& model, const Split& split, const TrainOptions& opts,
                 const std::function<void(const StepReport&)>& report);

// Samples n tokens after prompt (nanoGPT's generate: temperature, top-k;
// temperature 0 is greedy). The context is cropped to block_size.
[[nodiscard]] std::vector<int32_t> generate(Gpt& model, std::vector<int32_t> prompt, int n,
                                            float temperature, int top_k, uint64_t seed);

} // namespace orbitrain::compute
