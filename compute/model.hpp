// The GPT model (nanoGPT's architecture) and its pipeline stages.
//
// A `Gpt` is a contiguous stage of the model: optionally the embeddings, the
// blocks [first_layer, last_layer), and optionally the final LayerNorm and the
// LM head (tied to the token embedding). The whole model is the stage that has
// all three, so there is one implementation and a pipeline of stages computes
// exactly what the whole model computes. A stage that has the head but not the
// embeddings keeps its own copy of transformer.wte.weight; in a pipeline the
// two copies' gradients are summed, as for any tied weight.
//
// Parameters live in one contiguous float buffer carved into views (in
// nanoGPT's state_dict order), gradients in a second buffer with the same
// layout, so a parameter or gradient set ships as one byte range. Activations
// are kept for the backward pass in a third buffer that grows with B*T.
//
//   forward(tokens | acts, targets) -> loss     backward(grad_out | loss)
//   embed? -> block[first..last) -> head?       head? -> blocks reversed -> embed?
#pragma once

#include "compute/buffer.hpp"
#include "compute/config.hpp"
#include "compute/engine.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace orbitrain::compute {

// A platform-stable RNG: splitmix64 with Box-Muller normals, so the same seed
// gives the same weights on every machine and standard library.
class Rng {
public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();
  double uniform(); // [0, 1)
  double normal();  // N(0, 1)

private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

struct StageRange {
  int first_layer = 0;
  int last_layer = -1; // exclusive; -1 means n_layer
  bool embed = true;   // token + position embeddings
  bool head = true;    // final LayerNorm + tied LM head + loss
  static StageRange whole() { return {}; }
};

struct ParamSpec {
  std::string name;           // nanoGPT's state_dict name
  std::vector<int64_t> shape; // PyTorch layout: Linear weights are (out, in)
  size_t offset = 0;          // in floats, within the parameter buffer
  size_t numel = 0;
  bool decay = false; // AdamW weight decay applies (2-D tensors, as nanoGPT)
};

// The parameters of a stage, in buffer order.
[[nodiscard]] std::vector<ParamSpec> parameter_specs(const GptConfig& cfg, const StageRange& r);

class Gpt {
public:
  Gpt(const GptConfig& cfg, StageRange range = StageRange::whole(),
      Precision precision = Precision::f32);
  Gpt(const Gpt&) = delete;
  Gpt& operator=(const Gpt&) = delete;

  // nanoGPT initialisation, deterministic in seed; each tensor draws from its
  // own stream (seed, name), so stages initialise exactly as the whole model.
  void init_weights(uint64_t seed);

  [[nodiscard]] const GptConfig& config() const { return cfg_; }
  [[nodiscard]] const StageRange& range() const { return range_; }
  [[nodiscard]] const std::vector<ParamSpec>& specs() const { return specs_; }
  [[nodiscard]] Buffer& params() { return params_; }
  [[nodiscard]] const Buffer& params() const { return params_; }
  [[nodiscard]] Buffer& grads() { return grads_; }
  [[nodiscard]] const Buffer& grads() const { return grads_; }
  // The spec of a tensor by name, or nullptr.
  [[nodiscard]] const ParamSpec* find(const std::string& name) const;
  [[nodiscard]] Engine& engine() { return engine_; }
  // Floats held for activations and backward scratch at the current batch shape.
  [[nodiscard]] size_t activation_floats() const {
    return acts_.size() + scratch_.size() + (gelu_grad16_.size() + tmp16_.size()) / 2;
  }

  // Runs the stage on a batch of B sequences of T <= block_size positions.
  // tokens (B,T) feed a stage with embeddings, acts (B,T,C) any other. A stage
  // with the head returns the mean cross-entropy against targets (B,T) (0 when
  // targets is null; probabilities are still computed); others return 0.
  float forward(const int32_t* tokens, const float* acts, const int32_t* targets, int B, int T);
  // Output activations (B,T,C) of a stage without the head.
  [[nodiscard]] const float* output() const;
  // Next-token probabilities (B,T,V) of a stage with the head.
  [[nodiscard]] const float* probs() const;

  void zero_grad() { grads_.zero(); }
  // Accumulates (+=) parameter gradients of the last forward. A stage with the
  // head differentiates loss_scale * loss (grad_out is ignored); any other
  // stage takes grad_out (B,T,C), the gradient of its output.
  void backward(const float* grad_out, float loss_scale = 1.f);
  // Gradient (B,T,C) of the stage input, for stages without embeddings.
  [[nodiscard]] const float* input_grad() const;

  // Hooks for overlapping communication with computation (both optional).
  // The parameter buffer's order is the forward order (embeddings, blocks,
  // final LayerNorm), so both report a boundary in floats:
  //  - params_needed(end): forward is about to read parameters [0, end);
  //    the hook may block until they are in place.
  //  - grads_final(begin): backward will not touch gradients [begin, size)
  //    any more; they can be sent while it goes on.
  struct Hooks {
    std::function<void(size_t end)> params_needed;
    std::function<void(size_t begin)> grads_final;
  };
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }
  // The `begin` values grads_final reports during one backward, in order.
  [[nodiscard]] std::vector<size_t> gradient_boundaries() const;

private:
  struct BlockW {
    float *ln1_w, *ln1_b, *attn_w, *attn_b, *aproj_w, *aproj_b;
    float *ln2_w, *ln2_b, *fc_w, *fc_b, *mproj_w, *mproj_b;
  };
  struct BlockActs {
    float *ln1, *ln1_mean, *ln1_var, *qkv, *q, *k, *v, *att, *yh, *y, *xmid;
    float *ln2, *ln2_mean, *ln2_var, *fch, *fchg;
    // bf16 mode: the attention probabilities, which exist in bf16 only (the
    // f32 memory at att is not written), and GELU's derivative at fch (fch
    // itself is not kept); written by the forward, read by the backward.
    const uint16_t* att_bf16 = nullptr;
    uint16_t* gelu_grad = nullptr;
  };
  void bind(Buffer& buf, std::vector<BlockW>& blocks, float*& wte, float*& wpe, float*& lnf_w,
            float*& lnf_b);
  void ensure_activations(int B, int T);
  // A is the type of the activations that matmuls write and read: float in
  // f32 mode, uint16_t (bf16) in bf16 mode.
  template <typename A> void block_forward(int l, int B, int T);
  // Where a tensor of type A lives: in f32 mode at f32; in bf16 mode in the
  // bf16 copy that matmuls read (operand), or at offset in the bf16 scratch
  // (transient: a matmul result that only the next kernel reads).
  template <typename A> A* operand(float* f32, int64_t n);
  template <typename A> A* transient(float* f32, int64_t offset);
  // Layer norm over rows of n_embd: in f32 mode on the Engine (oneDNN); in
  // bf16 mode the kernels in kernels.hpp, with the output in bf16 only. The
  // backward adds the input gradient to dres_ (through dbig_ in f32 mode).
  // The forward also copies x to x_copy when it is not null.
  template <typename A>
  void ln_forward(float* out, float* mean, float* var, float* x_copy, const float* x,
                  const float* w, const float* b, int64_t rows);
  template <typename A>
  void ln_backward_add(float* dw, float* db, const float* dout, const float* x, const float* mean,
                       const float* var, const float* w, const float* b, int64_t rows);
  // Buffer boundaries for the hooks: end of the embeddings' parameters, and
  // [begin, end) of each block's and of the final LayerNorm's.
  void find_boundaries();
  void need(size_t end) const {
    if (hooks_.params_needed)
      hooks_.params_needed(end);
  }
  void final_from(size_t begin) const {
    if (hooks_.grads_final)
      hooks_.grads_final(begin);
  }
  template <typename A> void block_backward(int l, int B, int T);

  GptConfig cfg_;
  StageRange range_;
  Hooks hooks_;
  size_t embed_end_ = 0, head_begin_ = 0;
  std::vector<std::pair<size_t, size_t>> block_span_;
  int nl_; // number of blocks in this stage
  Engine engine_;
  std::vector<ParamSpec> specs_;
  Buffer params_, grads_;
  std::vector<BlockW> w_, g_;
  float *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr;
  float *dwte_ = nullptr, *dwpe_ = nullptr, *dlnf_w_ = nullptr, *dlnf_b_ = nullptr;

  // Activations, sized for B_*T_ positions.
  int B_ = 0, T_ = 0;
  size_t acts_capacity_ = 0;
  Buffer acts_;
  std::vector<BlockActs> a_;
  std::vector<float*> res_; // residual stream: res_[l] is block l's input, (B,T,C)
  float *lnf_ = nullptr, *lnf_mean_ = nullptr, *lnf_var_ = nullptr, *logits_ = nullptr,
        *probs_ = nullptr;
  std::vector<int32_t> tokens_, targets_;
  bool have_targets_ = false;
  // Backward scratch.
  Buffer scratch_;
  float *dres_ = nullptr, *dtmp_ = nullptr, *dbig_ = nullptr, *dqkv_ = nullptr, *dq_ = nullptr,
        *dk_ = nullptr, *dv_ = nullptr, *datt_ = nullptr, *dyh_ = nullptr, *dlogits_ = nullptr;
  // bf16 mode only: every block's GELU derivative, and scratch for the
  // transient matmul results.
  Bf16Buffer gelu_grad16_, tmp16_;
};

// Copies every parameter of dst that src also has (matched by name), e.g. to
// cut a stage out of a whole model or to gather stages into one. Returns the
// number of tensors copied; throws std::invalid_argument if the configs differ.
size_t copy_parameters(Gpt& dst, const Gpt& src);

} // namespace orbitrain::compute
