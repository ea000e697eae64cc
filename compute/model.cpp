// GPT forward and backward (see model.hpp): embeddings, pre-LN blocks of
// causal self-attention and MLP, final LayerNorm, tied LM head, cross-entropy.
// Matmuls, LayerNorm and GELU run on the Engine (oneDNN); the rest on the
// kernels in kernels.hpp.
#include "compute/model.hpp"

#include "compute/kernels.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

namespace orbitrain::compute {

uint64_t Rng::next_u64() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::uniform() {
  return double(next_u64() >> 11) * 0x1.0p-53;
}

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform();
  while (u1 <= 0.0)
    u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2.0 * M_PI * u2);
  has_spare_ = true;
  return r * std::cos(2.0 * M_PI * u2);
}

std::vector<ParamSpec> parameter_specs(const GptConfig& cfg, const StageRange& r) {
  const int64_t C = cfg.n_embd, V = cfg.vocab_size;
  const int last = r.last_layer < 0 ? cfg.n_layer : r.last_layer;
  std::vector<ParamSpec> out;
  size_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    ParamSpec s;
    s.name = std::move(name);
    s.numel = 1;
    for (int64_t d : shape)
      s.numel *= size_t(d);
    s.decay = shape.size() >= 2;
    s.shape = std::move(shape);
    s.offset = off;
    off += s.numel;
    out.push_back(std::move(s));
  };
  if (r.embed || r.head)
    add("transformer.wte.weight", {V, C});
  if (r.embed)
    add("transformer.wpe.weight", {cfg.block_size, C});
  for (int l = r.first_layer; l < last; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    add(p + "ln_1.weight", {C});
    if (cfg.bias)
      add(p + "ln_1.bias", {C});
    add(p + "attn.c_attn.weight", {3 * C, C});
    if (cfg.bias)
      add(p + "attn.c_attn.bias", {3 * C});
    add(p + "attn.c_proj.weight", {C, C});
    if (cfg.bias)
      add(p + "attn.c_proj.bias", {C});
    add(p + "ln_2.weight", {C});
    if (cfg.bias)
      add(p + "ln_2.bias", {C});
    add(p + "mlp.c_fc.weight", {4 * C, C});
    if (cfg.bias)
      add(p + "mlp.c_fc.bias", {4 * C});
    add(p + "mlp.c_proj.weight", {C, 4 * C});
    if (cfg.bias)
      add(p + "mlp.c_proj.bias", {C});
  }
  if (r.head) {
    add("transformer.ln_f.weight", {C});
    if (cfg.bias)
      add("transformer.ln_f.bias", {C});
  }
  return out;
}

Gpt::Gpt(const GptConfig& cfg, StageRange range, Precision precision)
    : cfg_(cfg), range_(range), engine_(precision) {
  cfg_.validate();
  if (range_.last_layer < 0)
    range_.last_layer = cfg_.n_layer;
  if (range_.first_layer < 0 || range_.first_layer > range_.last_layer ||
      range_.last_layer > cfg_.n_layer)
    throw std::invalid_argument(
        "invalid stage range: layers [" + std::to_string(range_.first_layer) + ", " +
        std::to_string(range_.last_layer) + ") of " + std::to_string(cfg_.n_layer));
  nl_ = range_.last_layer - range_.first_layer;
  specs_ = parameter_specs(cfg_, range_);
  const size_t total = specs_.empty() ? 0 : specs_.back().offset + specs_.back().numel;
  params_.resize(total);
  grads_.resize(total);
  bind(params_, w_, wte_, wpe_, lnf_w_, lnf_b_);
  bind(grads_, g_, dwte_, dwpe_, dlnf_w_, dlnf_b_);
  engine_.set_stable_region(params_.data(), params_.size());
  find_boundaries();
}

std::vector<size_t> Gpt::gradient_boundaries() const {
  std::vector<size_t> out;
  if (range_.head)
    out.push_back(head_begin_);
  for (int l = nl_ - 1; l >= 0; --l)
    out.push_back(block_span_[size_t(l)].first);
  out.push_back(0);
  return out;
}

void Gpt::find_boundaries() {
  block_span_.assign(size_t(nl_), {params_.size(), 0});
  head_begin_ = params_.size();
  embed_end_ = 0;
  const std::string block_prefix = "transformer.h.";
  for (const ParamSpec& s : specs_) {
    const size_t b = s.offset, e = s.offset + s.numel;
    if (s.name.rfind(block_prefix, 0) == 0) {
      const int l = std::stoi(s.name.substr(block_prefix.size())) - range_.first_layer;
      auto& span = block_span_.at(size_t(l));
      span = {std::min(span.first, b), std::max(span.second, e)};
    } else if (s.name.rfind("transformer.ln_f.", 0) == 0) {
      head_begin_ = std::min(head_begin_, b);
    } else if (range_.embed) { // wte, wpe
      embed_end_ = std::max(embed_end_, e);
    }
  }
}

const ParamSpec* Gpt::find(const std::string& name) const {
  for (const ParamSpec& s : specs_)
    if (s.name == name)
      return &s;
  return nullptr;
}

void Gpt::bind(Buffer& buf, std::vector<BlockW>& blocks, float*& wte, float*& wpe, float*& lnf_w,
               float*& lnf_b) {
  auto at = [&](const std::string& name) -> float* {
    const ParamSpec* s = find(name);
    return s ? buf.data() + s->offset : nullptr;
  };
  wte = at("transformer.wte.weight");
  wpe = at("transformer.wpe.weight");
  lnf_w = at("transformer.ln_f.weight");
  lnf_b = at("transformer.ln_f.bias");
  blocks.clear();
  for (int l = range_.first_layer; l < range_.last_layer; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    blocks.push_back(
        BlockW{at(p + "ln_1.weight"), at(p + "ln_1.bias"), at(p + "attn.c_attn.weight"),
               at(p + "attn.c_attn.bias"), at(p + "attn.c_proj.weight"), at(p + "attn.c_proj.bias"),
               at(p + "ln_2.weight"), at(p + "ln_2.bias"), at(p + "mlp.c_fc.weight"),
               at(p + "mlp.c_fc.bias"), at(p + "mlp.c_proj.weight"), at(p + "mlp.c_proj.bias")});
  }
}

static uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void Gpt::init_weights(uint64_t seed) {
  const double resid_std = 0.02 / std::sqrt(2.0 * cfg_.n_layer);
  for (const ParamSpec& s : specs_) {
    float* p = params_.data() + s.offset;
    const bool is_ln = s.name.find(".ln_") != std::string::npos;
    const bool is_bias = s.name.size() > 5 && s.name.compare(s.name.size() - 5, 5, ".bias") == 0;
    if (is_bias) {
      std::fill(p, p + s.numel, 0.f);
    } else if (is_ln) {
      std::fill(p, p + s.numel, 1.f);
    } else {
      const bool resid =
          s.name.size() >= 13 && s.name.compare(s.name.size() - 13, 13, "c_proj.weight") == 0;
      const double std = resid ? resid_std : 0.02;
      Rng rng(seed * 0x9E3779B97F4A7C15ull ^ fnv1a(s.name));
      for (size_t i = 0; i < s.numel; ++i)
        p[i] = float(std * rng.normal());
    }
  }
}

void Gpt::ensure_activations(int B, int T) {
  if (B < 1 || T < 1 || T > cfg_.block_size)
    throw std::invalid_argument("batch shape (" + std::to_string(B) + ", " + std::to_string(T) +
                                ") invalid for block_size " + std::to_string(cfg_.block_size));
  if (B == B_ && T == T_)
    return;
  const size_t BT = size_t(B) * T, C = size_t(cfg_.n_embd), V = size_t(cfg_.vocab_size);
  const size_t NH = size_t(cfg_.n_head), att = size_t(B) * NH * T * T;
  const size_t per_block = BT * C * 9 + BT * 3 * C + BT * 8 * C + att + 4 * BT;
  size_t need = per_block * size_t(nl_) + BT * C * size_t(nl_ + 1);
  if (range_.head)
    need += BT * C + 2 * BT + 2 * BT * V;
  acts_.resize(need);
  float* p = acts_.data();
  auto take = [&](size_t n) {
    float* r = p;
    p += n;
    return r;
  };
  res_.assign(size_t(nl_) + 1, nullptr);
  for (auto& r : res_)
    r = take(BT * C);
  a_.assign(size_t(nl_), BlockActs{});
  for (BlockActs& a : a_) {
    a.ln1 = take(BT * C), a.ln1_mean = take(BT), a.ln1_var = take(BT);
    a.qkv = take(BT * 3 * C), a.q = take(BT * C), a.k = take(BT * C), a.v = take(BT * C);
    a.att = take(att), a.yh = take(BT * C), a.y = take(BT * C), a.xmid = take(BT * C);
    a.ln2 = take(BT * C), a.ln2_mean = take(BT), a.ln2_var = take(BT);
    a.fch = take(BT * 4 * C), a.fchg = take(BT * 4 * C);
  }
  if (range_.head) {
    lnf_ = take(BT * C), lnf_mean_ = take(BT), lnf_var_ = take(BT);
    logits_ = take(BT * V), probs_ = take(BT * V);
  }
  scratch_.resize(BT * C * 2 + BT * 4 * C + BT * 3 * C + 4 * BT * C + att + BT * V);
  float* s = scratch_.data();
  auto stake = [&](size_t n) {
    float* r = s;
    s += n;
    return r;
  };
  dres_ = stake(BT * C), dtmp_ = stake(BT * C), dbig_ = stake(BT * 4 * C);
  dqkv_ = stake(BT * 3 * C), dq_ = stake(BT * C), dk_ = stake(BT * C), dv_ = stake(BT * C);
  dyh_ = stake(BT * C), datt_ = stake(att), dlogits_ = stake(BT * V);
  if (engine_.precision() == Precision::bf16) {
    // The largest set of transients alive at once: the backward's datt, dv,
    // dq and dk, or its MLP gradient.
    gelu_grad16_.resize(size_t(nl_) * BT * 4 * C);
    tmp16_.resize(std::max(att + 3 * BT * C, BT * 4 * C));
    for (int l = 0; l < nl_; ++l)
      a_[size_t(l)].gelu_grad = gelu_grad16_.data() + size_t(l) * BT * 4 * C;
  }
  // Everything after the residual stream is written by the forward and only
  // read by the backward. In bf16 mode the matmul operands among it are all
  // written in bf16 by their producers; declaring the region lets the Engine
  // drop their copies when the shape changes (and would round any other
  // operand there once per step).
  const float* first = res_.back() + BT * C;
  engine_.set_activation_region(first, size_t(acts_.data() + acts_.size() - first));
  B_ = B, T_ = T;
}

// Causal attention products skip the upper-right quarter of the (T,T) score
// matrices, which the mask zeroes anyway: with h = T/2, rows [0,h) only meet
// keys [0,h). That is 3/4 of the work, in two matmuls over strided sub-blocks
// instead of one. Only in f32: oneDNN 2.6 runs bf16 matmuls over strided
// sub-blocks on its gemm:jit, not on the AMX brgemm it uses for dense ones,
// and the blocked products then took 46 ms a step against 28 ms unblocked
// (small model).
static bool use_causal_blocks(const Engine& e, int T) {
  return e.precision() == Precision::f32 && T >= 4 && T % 2 == 0;
}

template <typename A> A* Gpt::operand(float* f32, int64_t n) {
  if constexpr (std::is_same_v<A, float>)
    return f32;
  else
    return engine_.bf16_output(f32, size_t(n));
}

template <typename A> A* Gpt::transient(float* f32, int64_t offset) {
  if constexpr (std::is_same_v<A, float>)
    return f32;
  else
    return tmp16_.data() + offset;
}

template <typename A>
void Gpt::ln_forward(float* out, float* mean, float* var, float* x_copy, const float* x,
                     const float* w, const float* b, int64_t rows) {
  const int C = cfg_.n_embd;
  if constexpr (std::is_same_v<A, float>) {
    engine_.layernorm_forward(out, mean, var, x, w, b, rows, C);
    if (x_copy)
      engine_.timed("residual", [&] { std::memcpy(x_copy, x, sizeof(float) * size_t(rows * C)); });
  } else { // only matmuls read the output: in bf16 only
    engine_.timed("layernorm", [&] {
      layernorm_forward(operand<A>(out, rows * C), mean, var, x_copy, x, w, b, rows, C);
    });
  }
}

template <typename A>
void Gpt::ln_backward_add(float* dw, float* db, const float* dout, const float* x,
                          const float* mean, const float* var, const float* w, const float* b,
                          int64_t rows) {
  const int C = cfg_.n_embd;
  if constexpr (std::is_same_v<A, float>) {
    engine_.layernorm_backward(dbig_, dw, db, dout, x, mean, var, w, b, rows, C);
    engine_.timed("residual", [&] { accumulate(dres_, dbig_, rows * C); });
  } else { // also writes the bf16 copy of dres that the next matmuls read
    engine_.timed("layernorm", [&] {
      layernorm_backward_add(dres_, engine_.bf16_output(dres_, size_t(rows * C)), dw, db, dout, x,
                             mean, var, w, rows, C);
    });
  }
}

// The block's activations that matmuls write and read are of type A (see
// model.hpp); the residual stream and its gradient, the layer norm
// statistics and the parameter gradients are always f32.
template <typename A> void Gpt::block_forward(int l, int B, int T) {
  constexpr bool bf16 = std::is_same_v<A, uint16_t>;
  const int C = cfg_.n_embd, NH = cfg_.n_head, hs = C / NH;
  const int64_t BT = int64_t(B) * T, BNH = int64_t(B) * NH;
  const BlockW& w = w_[size_t(l)];
  BlockActs& a = a_[size_t(l)];
  const float* x = res_[size_t(l)];
  float* xout = res_[size_t(l) + 1];
  Engine& e = engine_;
  // ln1 is (B,T,C)
  // (and xmid = x, which the attention's output projection adds into)
  ln_forward<A>(a.ln1, a.ln1_mean, a.ln1_var, a.xmid, x, w.ln1_w, w.ln1_b, BT);
  // qkv (B,T,3C) = ln1 . c_attn^T; q, k, v are (B,NH,T,hs)
  A* qkv = transient<A>(a.qkv, 0);
  e.matmul(qkv, a.ln1, w.attn_w, w.attn_b,
           {1, BT, 3 * C, C, false, true, false, w.attn_b != nullptr});
  e.timed("heads split/merge", [&] {
    split_heads(operand<A>(a.q, BT * C), operand<A>(a.k, BT * C), operand<A>(a.v, BT * C), qkv, B,
                T, NH, hs);
  });
  // att (B,NH,T,T) = softmax(q k^T / sqrt(hs)) with the causal mask; in
  // f32 in place over the scores
  A* scores = transient<A>(a.att, 0);
  const bool blocks = use_causal_blocks(e, T);
  if (blocks) {
    const int64_t h = T / 2, Th = T - h, sq = int64_t(T) * hs, ss = int64_t(T) * T;
    // att[0:h, 0:h] = q[0:h] k[0:h]^T;  att[h:T, 0:T] = q[h:T] k^T
    e.matmul(scores, a.q, a.k, nullptr,
             {BNH, h, h, hs, false, true, false, false, hs, hs, T, sq, sq, ss});
    e.matmul(scores + h * T, a.q + h * hs, a.k, nullptr,
             {BNH, Th, T, hs, false, true, false, false, hs, hs, T, sq, sq, ss});
  } else {
    e.matmul(scores, a.q, a.k, nullptr, {BNH, T, T, hs, false, true, false, false});
  }
  A* att = operand<A>(a.att, BNH * T * T);
  e.timed("softmax",
          [&] { causal_softmax_forward(att, scores, 1.f / std::sqrt(float(hs)), BNH, T); });
  if constexpr (bf16)
    a.att_bf16 = att;
  // yh (B,NH,T,hs) = att v; y (B,T,C)
  A* yh = transient<A>(a.yh, 0);
  if (blocks) {
    const int64_t h = T / 2, Th = T - h, sq = int64_t(T) * hs, ss = int64_t(T) * T;
    // yh[0:h] = att[0:h, 0:h] v[0:h];  yh[h:T] = att[h:T, 0:T] v
    e.matmul(yh, a.att, a.v, nullptr,
             {BNH, h, hs, h, false, false, false, false, T, hs, hs, ss, sq, sq});
    e.matmul(yh + h * hs, a.att + h * T, a.v, nullptr,
             {BNH, Th, hs, T, false, false, false, false, T, hs, hs, ss, sq, sq});
  } else {
    e.matmul(yh, a.att, a.v, nullptr, {BNH, T, hs, T, false, false, false, false});
  }
  e.timed("heads split/merge", [&] { merge_heads(operand<A>(a.y, BT * C), yh, B, T, NH, hs); });
  // xmid (B,T,C) = x + y . attn.c_proj^T
  e.matmul(a.xmid, a.y, w.aproj_w, w.aproj_b,
           {1, BT, C, C, false, true, true, w.aproj_b != nullptr});
  // ln2 (B,T,C) (and xout = xmid); fch, fchg (B,T,4C)
  ln_forward<A>(a.ln2, a.ln2_mean, a.ln2_var, xout, a.xmid, w.ln2_w, w.ln2_b, BT);
  if constexpr (bf16) {
    // fch is a transient: the backward only needs GELU's derivative at it
    A* fch = transient<A>(a.fch, 0);
    e.matmul(fch, a.ln2, w.fc_w, w.fc_b, {1, BT, 4 * C, C, false, true, false, w.fc_b != nullptr});
    e.timed("gelu",
            [&] { gelu_forward(operand<A>(a.fchg, BT * 4 * C), a.gelu_grad, fch, BT * 4 * C); });
  } else {
    e.matmul(a.fch, a.ln2, w.fc_w, w.fc_b,
             {1, BT, 4 * C, C, false, true, false, w.fc_b != nullptr});
    e.gelu_forward(a.fchg, a.fch, BT * 4 * C);
  }
  // xout (B,T,C) = xmid + fchg . mlp.c_proj^T
  e.matmul(xout, a.fchg, w.mproj_w, w.mproj_b,
           {1, BT, C, 4 * C, false, true, true, w.mproj_b != nullptr});
}

float Gpt::forward(const int32_t* tokens, const float* acts, const int32_t* targets, int B, int T) {
  ensure_activations(B, T);
  engine_.invalidate_stable(); // parameters may have changed since the last forward
  const int C = cfg_.n_embd, V = cfg_.vocab_size;
  const int64_t BT = int64_t(B) * T;
  if (range_.embed) {
    if (!tokens)
      throw std::invalid_argument("Gpt::forward: a stage with embeddings needs tokens");
    tokens_.assign(tokens, tokens + BT);
    for (int32_t t : tokens_)
      if (t < 0 || t >= V)
        throw std::out_of_range("Gpt::forward: token " + std::to_string(t) +
                                " outside the vocabulary of " + std::to_string(V));
    // res_[0] (B,T,C) = wte[tokens] + wpe[t]
    need(embed_end_);
    engine_.timed("embedding",
                  [&] { encoder_forward(res_[0], tokens_.data(), wte_, wpe_, B, T, C); });
  } else {
    if (!acts)
      throw std::invalid_argument("Gpt::forward: a stage without embeddings needs activations");
    std::memcpy(res_[0], acts, sizeof(float) * size_t(BT * C));
  }
  for (int l = 0; l < nl_; ++l) {
    need(block_span_[size_t(l)].second);
    if (engine_.precision() == Precision::bf16)
      block_forward<uint16_t>(l, B, T);
    else
      block_forward<float>(l, B, T);
  }
  if (!range_.head)
    return 0.f;
  need(params_.size());
  const float* x = res_[size_t(nl_)];
  if (engine_.precision() == Precision::bf16)
    ln_forward<uint16_t>(lnf_, lnf_mean_, lnf_var_, nullptr, x, lnf_w_, lnf_b_, BT);
  else
    ln_forward<float>(lnf_, lnf_mean_, lnf_var_, nullptr, x, lnf_w_, lnf_b_, BT);
  // logits (B,T,V) = lnf . wte^T
  engine_.matmul(logits_, lnf_, wte_, nullptr, {1, BT, V, C, false, true, false, false});
  have_targets_ = targets != nullptr;
  if (targets) {
    targets_.assign(targets, targets + BT);
    for (int32_t t : targets_)
      if (t < 0 || t >= V)
        throw std::out_of_range("Gpt::forward: target " + std::to_string(t) +
                                " outside the vocabulary of " + std::to_string(V));
  }
  double loss = 0;
  engine_.timed("cross-entropy", [&] {
    loss = crossentropy_forward(probs_, logits_, targets ? targets_.data() : nullptr, BT, V);
  });
  return float(loss);
}

const float* Gpt::output() const {
  if (range_.head)
    throw std::logic_error("Gpt::output: a stage with the head outputs probabilities");
  return res_.empty() ? nullptr : res_[size_t(nl_)];
}

const float* Gpt::probs() const {
  if (!range_.head)
    throw std::logic_error("Gpt::probs: stage has no head");
  return probs_;
}

const float* Gpt::input_grad() const {
  if (range_.embed)
    throw std::logic_error("Gpt::input_grad: a stage with embeddings takes tokens");
  return dres_;
}

template <typename A> void Gpt::block_backward(int l, int B, int T) {
  constexpr bool bf16 = std::is_same_v<A, uint16_t>;
  const int C = cfg_.n_embd, NH = cfg_.n_head, hs = C / NH;
  const int64_t BT = int64_t(B) * T, BNH = int64_t(B) * NH;
  const BlockW& w = w_[size_t(l)];
  const BlockW& g = g_[size_t(l)];
  const BlockActs& a = a_[size_t(l)];
  const float* x = res_[size_t(l)];
  Engine& e = engine_;
  // On entry dres_ (B,T,C) is the gradient of the block output; on exit, of its input.
  // MLP: dbig (B,T,4C) = dres . mlp.c_proj; d mlp.c_proj (C,4C) += dres^T . fchg
  // (hold: each gradient read by two matmuls in a row is rounded to bf16 once)
  A* dfchg = transient<A>(dbig_, 0);
  e.hold(dres_, size_t(BT * C));
  e.matmul(dfchg, dres_, w.mproj_w, nullptr, {1, BT, 4 * C, C, false, false, false, false});
  e.matmul(g.mproj_w, dres_, a.fchg, nullptr, {1, C, 4 * C, BT, true, false, true, false});
  e.release();
  if (g.mproj_b)
    bias_backward(g.mproj_b, dres_, BT, C);
  // dfch (B,T,4C) into dbig: in bf16 mode in bf16 only, unless the bias
  // gradient needs it in f32
  if constexpr (bf16)
    e.timed("gelu", [&] {
      if (g.fc_b)
        gelu_backward(dbig_, dfchg, a.gelu_grad, BT * 4 * C);
      else
        gelu_backward(operand<A>(dbig_, BT * 4 * C), dfchg, a.gelu_grad, BT * 4 * C);
    });
  else
    e.gelu_backward(dbig_, dbig_, a.fch, BT * 4 * C);
  // dtmp (B,T,C) = dfch . c_fc; d c_fc (4C,C) += dfch^T . ln2
  e.hold(dbig_, size_t(BT * 4 * C));
  e.matmul(dtmp_, dbig_, w.fc_w, nullptr, {1, BT, C, 4 * C, false, false, false, false});
  e.matmul(g.fc_w, dbig_, a.ln2, nullptr, {1, 4 * C, C, BT, true, false, true, false});
  e.release();
  if (g.fc_b)
    bias_backward(g.fc_b, dbig_, BT, 4 * C);
  // dres += ln_2 backward (dbig is free again: f32 mode's LN input gradient)
  ln_backward_add<A>(g.ln2_w, g.ln2_b, dtmp_, a.xmid, a.ln2_mean, a.ln2_var, w.ln2_w, w.ln2_b, BT);
  // Attention output projection: dy (B,T,C) = dres . attn.c_proj
  A* dy = transient<A>(dtmp_, 0);
  e.hold(dres_, size_t(BT * C));
  e.matmul(dy, dres_, w.aproj_w, nullptr, {1, BT, C, C, false, false, false, false});
  e.matmul(g.aproj_w, dres_, a.y, nullptr, {1, C, C, BT, true, false, true, false});
  e.release();
  if (g.aproj_b)
    bias_backward(g.aproj_b, dres_, BT, C);
  // dyh (B,NH,T,hs)
  e.timed("heads split/merge", [&] { split_heads1(operand<A>(dyh_, BT * C), dy, B, T, NH, hs); });
  // datt (B,NH,T,T) = dyh v^T; dv (B,NH,T,hs) = att^T dyh
  const int64_t natt = BNH * T * T;
  A* datt = transient<A>(datt_, 0);
  A* dv = transient<A>(dv_, natt);
  const bool blocks = use_causal_blocks(e, T);
  const int64_t h = T / 2, Th = T - h, sq = int64_t(T) * hs, ss = int64_t(T) * T;
  if (blocks) {
    // datt[0:h, 0:h] = dyh[0:h] v[0:h]^T;  datt[h:T, 0:T] = dyh[h:T] v^T
    e.matmul(datt, dyh_, a.v, nullptr,
             {BNH, h, h, hs, false, true, false, false, hs, hs, T, sq, sq, ss});
    e.matmul(datt + h * T, dyh_ + h * hs, a.v, nullptr,
             {BNH, Th, T, hs, false, true, false, false, hs, hs, T, sq, sq, ss});
    // dv[0:h] = att[0:T, 0:h]^T dyh;  dv[h:T] = att[h:T, h:T]^T dyh[h:T]
    e.matmul(dv, a.att, dyh_, nullptr,
             {BNH, h, hs, T, true, false, false, false, T, hs, hs, ss, sq, sq});
    e.matmul(dv + h * hs, a.att + h * T + h, dyh_ + h * hs, nullptr,
             {BNH, Th, hs, Th, true, false, false, false, T, hs, hs, ss, sq, sq});
  } else {
    e.matmul(datt, dyh_, a.v, nullptr, {BNH, T, T, hs, false, true, false, false});
    e.matmul(dv, a.att, dyh_, nullptr, {BNH, T, hs, T, true, false, false, false});
  }
  // dpre (B,NH,T,T), over datt in f32 (in place)
  const A* att;
  if constexpr (bf16)
    att = a.att_bf16;
  else
    att = a.att;
  e.timed("softmax", [&] {
    causal_softmax_backward(operand<A>(datt_, natt), datt, att, 1.f / std::sqrt(float(hs)), BNH, T);
  });
  // dq = dpre k; dk = dpre^T q (B,NH,T,hs)
  A* dq = transient<A>(dq_, natt + BT * C);
  A* dk = transient<A>(dk_, natt + 2 * BT * C);
  if (blocks) {
    // dq[0:h] = dpre[0:h, 0:h] k[0:h];  dq[h:T] = dpre[h:T, 0:T] k
    e.matmul(dq, datt_, a.k, nullptr,
             {BNH, h, hs, h, false, false, false, false, T, hs, hs, ss, sq, sq});
    e.matmul(dq + h * hs, datt_ + h * T, a.k, nullptr,
             {BNH, Th, hs, T, false, false, false, false, T, hs, hs, ss, sq, sq});
    // dk[0:h] = dpre[0:T, 0:h]^T q;  dk[h:T] = dpre[h:T, h:T]^T q[h:T]
    e.matmul(dk, datt_, a.q, nullptr,
             {BNH, h, hs, T, true, false, false, false, T, hs, hs, ss, sq, sq});
    e.matmul(dk + h * hs, datt_ + h * T + h, a.q + h * hs, nullptr,
             {BNH, Th, hs, Th, true, false, false, false, T, hs, hs, ss, sq, sq});
  } else {
    e.matmul(dq, datt_, a.k, nullptr, {BNH, T, hs, T, false, false, false, false});
    e.matmul(dk, datt_, a.q, nullptr, {BNH, T, hs, T, true, false, false, false});
  }
  // dqkv (B,T,3C); in f32 when the bias gradient needs it
  e.timed("heads split/merge", [&] {
    if (g.attn_b)
      merge_heads3(dqkv_, dq, dk, dv, B, T, NH, hs);
    else
      merge_heads3(operand<A>(dqkv_, BT * 3 * C), dq, dk, dv, B, T, NH, hs);
  });
  // dtmp (B,T,C) = dqkv . c_attn; d c_attn (3C,C) += dqkv^T . ln1
  e.hold(dqkv_, size_t(BT * 3 * C));
  e.matmul(dtmp_, dqkv_, w.attn_w, nullptr, {1, BT, C, 3 * C, false, false, false, false});
  e.matmul(g.attn_w, dqkv_, a.ln1, nullptr, {1, 3 * C, C, BT, true, false, true, false});
  e.release();
  if (g.attn_b)
    bias_backward(g.attn_b, dqkv_, BT, 3 * C);
  // dres += ln_1 backward
  ln_backward_add<A>(g.ln1_w, g.ln1_b, dtmp_, x, a.ln1_mean, a.ln1_var, w.ln1_w, w.ln1_b, BT);
}

void Gpt::backward(const float* grad_out, float loss_scale) {
  if (B_ == 0)
    throw std::logic_error("Gpt::backward called before forward");
  const int B = B_, T = T_, C = cfg_.n_embd, V = cfg_.vocab_size;
  const int64_t BT = int64_t(B) * T;
  if (range_.head) {
    if (!have_targets_)
      throw std::logic_error("Gpt::backward: the last forward had no targets");
    // dlogits (B,T,V) = (probs - onehot) * loss_scale / BT
    engine_.timed("cross-entropy", [&] {
      crossentropy_backward(dlogits_, probs_, targets_.data(), loss_scale / float(BT), BT, V);
    });
    // dtmp (B,T,C) = dlogits . wte; d wte (V,C) += dlogits^T . lnf
    engine_.hold(dlogits_, size_t(BT * V));
    engine_.matmul(dtmp_, dlogits_, wte_, nullptr, {1, BT, C, V, false, false, false, false});
    engine_.matmul(dwte_, dlogits_, lnf_, nullptr, {1, V, C, BT, true, false, true, false});
    engine_.release();
    engine_.layernorm_backward(dres_, dlnf_w_, dlnf_b_, dtmp_, res_[size_t(nl_)], lnf_mean_,
                               lnf_var_, lnf_w_, lnf_b_, BT, C);
    final_from(head_begin_); // wte's gradient (at the start) is only final at the end
  } else {
    if (!grad_out)
      throw std::invalid_argument("Gpt::backward: a stage without the head needs grad_out");
    std::memcpy(dres_, grad_out, sizeof(float) * size_t(BT * C));
  }
  for (int l = nl_ - 1; l >= 0; --l) {
    if (engine_.precision() == Precision::bf16)
      block_backward<uint16_t>(l, B, T);
    else
      block_backward<float>(l, B, T);
    final_from(block_span_[size_t(l)].first);
  }
  if (range_.embed)
    engine_.timed("embedding",
                  [&] { encoder_backward(dwte_, dwpe_, dres_, tokens_.data(), B, T, C, V); });
  final_from(0);
}

size_t copy_parameters(Gpt& dst, const Gpt& src) {
  if (dst.config() != src.config())
    throw std::invalid_argument("copy_parameters: the two models have different configs");
  size_t n = 0;
  for (const ParamSpec& d : dst.specs())
    if (const ParamSpec* s = src.find(d.name)) {
      std::memcpy(dst.params().data() + d.offset, src.params().data() + s->offset,
                  d.numel * sizeof(float));
      ++n;
    }
  return n;
}

} // namespace orbitrain::compute
