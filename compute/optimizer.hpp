// AdamW with decoupled weight decay (PyTorch's torch.optim.AdamW arithmetic),
// gradient-norm clipping, and nanoGPT's learning-rate schedule (linear warmup,
// then cosine decay to min_lr). The optimizer state (m, v) is laid out like the
// parameter buffer, so a parameter server can own and checkpoint it whole.
#pragma once

#include "compute/buffer.hpp"
#include "compute/model.hpp"

#include <cstdint>
#include <functional>
#include <vector>

namespace orbitrain::compute {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

struct LrSchedule {
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  int warmup_steps = 100;
  int decay_steps = 2000; // cosine reaches min_lr here and stays
  // nanoGPT's get_lr(it).
  [[nodiscard]] float at(int step) const;
};

// Global L2 norm of g (n), accumulated in double.
[[nodiscard]] double grad_norm(const float* g, size_t n);
// The factor clipping to max_norm scales gradients of norm `norm` by: 1
// when they are within it (or max_norm <= 0).
[[nodiscard]] float clip_scale(double norm, double max_norm);
// Scales g so its norm is at most max_norm (torch.nn.utils.clip_grad_norm_);
// returns the norm before clipping. max_norm <= 0 disables clipping.
double clip_grad_norm(float* g, size_t n, double max_norm);

class AdamW {
public:
  AdamW(std::vector<ParamSpec> specs, AdamWConfig cfg);
  // One update of params with grads at learning rate lr. Tensors are updated
  // in buffer order; `done(end)`, when given, is called after each with the
  // end (in floats) of the prefix updated so far, so the new parameters can
  // be sent while the rest is computed. The gradients are used multiplied
  // by `grad_scale` (clip_scale's factor: clipping without a pass of its
  // own; the same floats as clip_grad_norm's g *= c).
  void step(float* params, const float* grads, float lr,
            const std::function<void(size_t end)>& done = nullptr, float grad_scale = 1.f);
  [[nodiscard]] int64_t steps_taken() const { return t_; }
  [[nodiscard]] Buffer& m() { return m_; }
  [[nodiscard]] Buffer& v() { return v_; }
  void set_steps_taken(int64_t t) { t_ = t; }

private:
  std::vector<ParamSpec> specs_;
  AdamWConfig cfg_;
  Buffer m_, v_;
  int64_t t_ = 0;
};

} // namespace orbitrain::compute
