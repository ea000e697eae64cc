// Batching, the training loop, evaluation and sampling (see trainer.hpp).
#include "compute/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace orbitrain::compute {

Sampler parse_sampler(const std::string& s) {
  if (s == "random")
    return Sampler::random;
  if (s == "sequential")
    return Sampler::sequential;
  throw std::invalid_argument("unknown sampler '" + s + "' (random, sequential)");
}

Split split_90_10(const std::vector<int32_t>& tokens) {
  const size_t n = tokens.size() * 9 / 10;
  Split s;
  s.train.assign(tokens.begin(), tokens.begin() + std::ptrdiff_t(n));
  s.val.assign(tokens.begin() + std::ptrdiff_t(n), tokens.end());
  return s;
}

void get_batch(std::vector<int32_t>& x, std::vector<int32_t>& y, const std::vector<int32_t>& data,
               Sampler sampler, int64_t index, int B, int T, Rng& rng) {
  if (data.size() < size_t(T) + 1)
    throw std::invalid_argument("data has " + std::to_string(data.size()) +
                                " tokens, fewer than block_size+1 = " + std::to_string(T + 1));
  x.resize(size_t(B) * T);
  y.resize(size_t(B) * T);
  const uint64_t windows = (data.size() - 1) / size_t(T);
  for (int b = 0; b < B; ++b) {
    uint64_t start;
    if (sampler == Sampler::sequential)
      start = (uint64_t(index * B + b) % windows) * uint64_t(T);
    else
      start = rng.next_u64() % (data.size() - size_t(T));
    std::copy_n(data.begin() + std::ptrdiff_t(start), T, x.begin() + std::ptrdiff_t(b) * T);
    std::copy_n(data.begin() + std::ptrdiff_t(start) + 1, T, y.begin() + std::ptrdiff_t(b) * T);
  }
}

double evaluate(Gpt& model, const std::vector<int32_t>& data, int B, int T, int n_batches) {
  std::vector<int32_t> x, y;
  Rng unused(0);
  double total = 0;
  for (int i = 0; i < n_batches; ++i) {
    get_batch(x, y, data, Sampler::sequential, i, B, T, unused);
    total += model.forward(x.data(), nullptr, y.data(), B, T);
  }
  return n_batches ? total / n_batches : 0.0;
}

void accumulate_gradients(float* sum, const float* g, size_t n) {
  for (size_t i = 0; i < n; ++i)
    sum[i] += g[i];
}

void add_gradients(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

StepReport train(Gpt& model, const Split& split, const TrainOptions& opts,
                 const std::function<void(const StepReport&)>& report) {
  const int B = opts.batch, T = model.config().block_size;
  if (B < 1 || opts.accum < 1 || opts.steps < 0)
    throw std::invalid_argument("batch and accum must be >= 1, steps >= 0");
  AdamW adam(model.specs(), opts.adamw);
  Rng rng(opts.seed);
  std::vector<int32_t> x, y;
  StepReport r;
  const int eval_B = std::max(1, std::min(B, 8));
  Buffer sum(model.grads().size());
  for (int step = 0; step < opts.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    // Each micro-batch's gradient is computed on its own and summed in
    // micro-batch order, exactly as a parameter server sums the gradients of
    // N workers, so both give bit-identical steps (see accumulate_gradients).
    double loss = 0;
    sum.zero();
    for (int k = 0; k < opts.accum; ++k) {
      get_batch(x, y, split.train, opts.sampler, int64_t(step) * opts.accum + k, B, T, rng);
      model.zero_grad();
      loss += model.forward(x.data(), nullptr, y.data(), B, T);
      model.backward(nullptr, 1.f / float(opts.accum));
      accumulate_gradients(sum.data(), model.grads().data(), sum.size());
    }
    std::memcpy(model.grads().data(), sum.data(), sum.size() * sizeof(float));
    r = StepReport{};
    r.step = step + 1;
    r.loss = loss / opts.accum;
    r.grad_norm = grad_norm(model.grads().data(), model.grads().size());
    r.lr = opts.schedule.at(step);
    adam.step(model.params().data(), model.grads().data(), r.lr, nullptr,
              clip_scale(r.grad_norm, opts.grad_clip));
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.tokens_per_s = double(B) * T * opts.accum / dt;
    const bool last = step + 1 == opts.steps;
    if (last || (opts.eval_every > 0 && (step + 1) % opts.eval_every == 0))
      r.val_loss = evaluate(model, split.val, eval_B, T, opts.eval_batches);
    if (report)
      report(r);
  }
  return r;
}

std::vector<int32_t> generate(Gpt& model, std::vector<int32_t> prompt, int n, float temperature,
                              int top_k, uint64_t seed) {
  const int T = model.config().block_size, V = model.config().vocab_size;
  if (prompt.empty())
    prompt.push_back(0);
  Rng rng(seed);
  std::vector<int32_t> ctx(static_cast<size_t>(T));
  std::vector<double> logp(static_cast<size_t>(V));
  std::vector<int> order(static_cast<size_t>(V));
  for (int i = 0; i < n; ++i) {
    // Causality lets a short context run at the full block size: the tail is
    // padding that cannot influence position len-1. One shape, one primitive set.
    const size_t len = std::min(prompt.size(), size_t(T));
    std::fill(ctx.begin(), ctx.end(), 0);
    std::copy(prompt.end() - std::ptrdiff_t(len), prompt.end(), ctx.begin());
    model.forward(ctx.data(), nullptr, nullptr, 1, T);
    const float* p = model.probs() + (len - 1) * size_t(V);
    int next = 0;
    if (temperature <= 0.f) {
      next = int(std::max_element(p, p + V) - p);
    } else {
      for (int j = 0; j < V; ++j)
        logp[size_t(j)] = std::log(std::max(double(p[j]), 1e-30)) / temperature;
      for (int j = 0; j < V; ++j)
        order[size_t(j)] = j;
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return logp[size_t(a)] > logp[size_t(b)]; });
      const int k = top_k > 0 ? std::min(top_k, V) : V;
      double mx = logp[size_t(order[0])], sum = 0;
      for (int j = 0; j < k; ++j)
        sum += std::exp(logp[size_t(order[size_t(j)])] - mx);
      double u = rng.uniform() * sum;
      next = order[size_t(k - 1)];
      for (int j = 0; j < k; ++j) {
        u -= std::exp(logp[size_t(order[size_t(j)])] - mx);
        if (u <= 0) {
          next = order[size_t(j)];
          break;
        }
      }
    }
    prompt.push_back(next);
  }
  return prompt;
}

} // namespace orbitrain::compute
