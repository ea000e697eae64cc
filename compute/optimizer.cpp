// AdamW, clipping and the learning-rate schedule (see optimizer.hpp).
#include "compute/optimizer.hpp"

#include <algorithm>
#include <cmath>

namespace orbitrain::compute {

float LrSchedule::at(int step) const {
  if (step < warmup_steps)
    return lr * float(step + 1) / float(warmup_steps + 1);
  if (step > decay_steps)
    return min_lr;
  const double ratio =
      double(step - warmup_steps) / double(std::max(1, decay_steps - warmup_steps));
  const double coeff = 0.5 * (1.0 + std::cos(M_PI * ratio));
  return float(min_lr + coeff * (double(lr) - min_lr));
}

double grad_norm(const float* g, size_t n) {
  // Fixed chunks, each summed in double over 8 lanes (element i goes to
  // lane i % 8, so the loop vectorises instead of waiting on one chain of
  // additions), lanes and then chunk sums combined in a fixed order: the
  // result does not depend on the number of threads.
  constexpr int64_t kChunks = 64;
  constexpr size_t kLanes = 8;
  double part[kChunks] = {};
#pragma omp parallel for schedule(static) if (n >= (size_t(1) << 16))
  for (int64_t c = 0; c < kChunks; ++c) {
    const size_t b = n * size_t(c) / kChunks, e = n * size_t(c + 1) / kChunks;
    double lane[kLanes] = {};
    size_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (size_t j = 0; j < kLanes; ++j)
        lane[j] += double(g[i + j]) * double(g[i + j]);
    for (size_t j = 0; i < e; ++i, ++j)
      lane[j] += double(g[i]) * double(g[i]);
    double s = 0.0;
    for (double l : lane)
      s += l;
    part[c] = s;
  }
  double s = 0.0;
  for (double p : part)
    s += p;
  return std::sqrt(s);
}

float clip_scale(double norm, double max_norm) {
  if (max_norm <= 0.0)
    return 1.f;
  const double coef = max_norm / (norm + 1e-6);
  return coef < 1.0 ? float(coef) : 1.f;
}

double clip_grad_norm(float* g, size_t n, double max_norm) {
  const double norm = grad_norm(g, n);
  const float c = clip_scale(norm, max_norm);
  if (c != 1.f) {
    const int64_t m = int64_t(n);
#pragma omp parallel for simd schedule(static) if (m >= (int64_t(1) << 15))
    for (int64_t i = 0; i < m; ++i)
      g[i] *= c;
  }
  return norm;
}

AdamW::AdamW(std::vector<ParamSpec> specs, AdamWConfig cfg) : specs_(std::move(specs)), cfg_(cfg) {
  const size_t n = specs_.empty() ? 0 : specs_.back().offset + specs_.back().numel;
  m_.resize(n);
  v_.resize(n);
}

void AdamW::step(float* params, const float* grads, float lr,
                 const std::function<void(size_t end)>& done, float grad_scale) {
  ++t_;
  const float b1 = cfg_.beta1, b2 = cfg_.beta2, eps = cfg_.eps;
  const float bc1 = 1.f - float(std::pow(double(b1), double(t_)));
  const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(double(b2), double(t_))));
  const float step_size = lr / bc1;
  for (const ParamSpec& s : specs_) {
    float* p = params + s.offset;
    const float* g = grads + s.offset;
    float* m = m_.data() + s.offset;
    float* v = v_.data() + s.offset;
    const float decay = s.decay ? 1.f - lr * cfg_.weight_decay : 1.f;
    const int64_t n = int64_t(s.numel);
#pragma omp parallel for simd schedule(static) if (n >= (int64_t(1) << 15))
    for (int64_t i = 0; i < n; ++i) {
      // g * 1 is g: unclipped gradients are used as they are.
      const float gi = g[i] * grad_scale;
      p[i] *= decay;
      m[i] = b1 * m[i] + (1.f - b1) * gi;
      v[i] = b2 * v[i] + (1.f - b2) * gi * gi;
      const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      p[i] -= step_size * m[i] / denom;
    }
    if (done)
      done(s.offset + s.numel);
  }
}

} // namespace orbitrain::compute
