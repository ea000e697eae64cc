// The parameter server's per-step work on the small model's 10.7 M
// parameters (Google Benchmark; --benchmark_format=json): gradient norm,
// clipping and AdamW as the trainer and the parameter server run them now
// (norm, then AdamW with the clip factor inside), against the way they ran
// before (a one-chain norm, a clipping pass, then AdamW) as the baseline.
// One thread, as a satellite's parameter server runs with --threads 1.
#include "compute/config.hpp"
#include "compute/model.hpp"
#include "compute/optimizer.hpp"

#include <benchmark/benchmark.h>
#include <cmath>
#include <cstdint>
#include <omp.h>
#include <vector>

namespace cp = orbitrain::compute;

namespace {

cp::GptConfig with_vocab(cp::GptConfig c) {
  c.vocab_size = 65; // Shakespeare's characters
  return c;
}

struct Fixture {
  cp::Gpt model{with_vocab(cp::GptConfig::builtin("small"))};
  cp::AdamW adam{model.specs(), {}};
  std::vector<float> grads;
  Fixture() {
    omp_set_num_threads(1);
    model.init_weights(1);
    grads.assign(model.params().size(), 0.f);
    for (size_t i = 0; i < grads.size(); ++i)
      grads[i] = 0.01f * std::sin(float(i)); // norm ~23: clipped to 1
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// The baseline, as the code was before: one dependent chain of double
// additions, a separate clipping pass, and AdamW's loop compiled with
// math-errno (this file's flags), which keeps it scalar with a libm sqrtf
// call per element.
void baseline_adamw(cp::AdamW& a, const std::vector<cp::ParamSpec>& specs, float* params,
                    const float* grads, float lr, int64_t t) {
  const cp::AdamWConfig cfg;
  const float b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps;
  const float bc1 = 1.f - float(std::pow(double(b1), double(t)));
  const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(double(b2), double(t))));
  const float step_size = lr / bc1;
  for (const auto& s : specs) {
    float* p = params + s.offset;
    const float* g = grads + s.offset;
    float* m = a.m().data() + s.offset;
    float* v = a.v().data() + s.offset;
    const float decay = s.decay ? 1.f - lr * cfg.weight_decay : 1.f;
    for (size_t i = 0; i < s.numel; ++i) {
      p[i] *= decay;
      m[i] = b1 * m[i] + (1.f - b1) * g[i];
      v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
      const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      p[i] -= step_size * m[i] / denom;
    }
  }
}

double chain_norm(const float* g, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i)
    s += double(g[i]) * g[i];
  return std::sqrt(s);
}

void BM_NormClipAdamW_Baseline(benchmark::State& state) {
  auto& f = fixture();
  std::vector<float> g = f.grads;
  int64_t t = 0;
  for (auto _ : state) {
    const double norm = chain_norm(g.data(), g.size());
    const float c = cp::clip_scale(norm, 1.0);
    for (float& x : g)
      x *= c;
    baseline_adamw(f.adam, f.model.specs(), f.model.params().data(), g.data(), 1e-4f, ++t);
    benchmark::DoNotOptimize(f.model.params().data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(g.size()));
}

void BM_NormClipAdamW(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) {
    const double norm = cp::grad_norm(f.grads.data(), f.grads.size());
    f.adam.step(f.model.params().data(), f.grads.data(), 1e-4f, nullptr, cp::clip_scale(norm, 1.0));
    benchmark::DoNotOptimize(f.model.params().data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(f.grads.size()));
}

void BM_GradNorm_Chain(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state)
    benchmark::DoNotOptimize(chain_norm(f.grads.data(), f.grads.size()));
}

void BM_GradNorm(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state)
    benchmark::DoNotOptimize(cp::grad_norm(f.grads.data(), f.grads.size()));
}

} // namespace

BENCHMARK(BM_NormClipAdamW_Baseline)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(BM_NormClipAdamW)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(BM_GradNorm_Chain)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(BM_GradNorm)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK_MAIN();
