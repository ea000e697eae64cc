// Engine: oneDNN primitives (matmul, layer normalization, eltwise GELU) created
// once per shape and cached. Memory objects wrap the caller's pointers, so no
// data is copied except the bf16 rounding of matmul inputs in bf16 mode.
#include "compute/engine.hpp"

#include "compute/bf16.hpp"

#include <cstring>
#include <stdexcept>

namespace orbitrain::compute {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

Precision parse_precision(const std::string& s) {
  if (s == "f32")
    return Precision::f32;
  if (s == "bf16")
    return Precision::bf16;
  throw std::invalid_argument("unknown precision '" + s + "' (f32, bf16)");
}

const char* to_string(Precision p) {
  return p == Precision::f32 ? "f32" : "bf16";
}

struct Engine::LnPrims {
  dnnl::layer_normalization_forward fwd;
  dnnl::layer_normalization_backward bwd;
  dnnl::memory::desc data, stat, scale;
};

struct Engine::EltPrims {
  dnnl::eltwise_forward fwd;
  dnnl::eltwise_backward bwd;
  dnnl::memory::desc md;
};

Engine::Engine(Precision precision)
    : precision_(precision), eng_(dnnl::engine::kind::cpu, 0), stream_(eng_) {}

Engine::~Engine() = default;

Engine::MmPrim& Engine::matmul_prim(const MatmulShape& s, bool c_bf16) {
  const auto key = std::make_pair(s, c_bf16);
  auto it = mm_.find(key);
  if (it != mm_.end())
    return it->second;
  const dt in_t = precision_ == Precision::bf16 ? dt::bf16 : dt::f32;
  const int64_t B = s.batch, M = s.M, N = s.N, K = s.K;
  // A (B,M,K): stored (B,M,K) or, transposed, (B,K,M), rows lda apart.
  dnnl::memory::desc a(dims{B, M, K}, in_t,
                       s.trans_a ? dims{s.sa_(), 1, s.lda_()} : dims{s.sa_(), s.lda_(), 1});
  // B (B,K,N): stored (B,K,N) or, transposed, (B,N,K), rows ldb apart.
  dnnl::memory::desc b(dims{B, K, N}, in_t,
                       s.trans_b ? dims{s.sb_(), 1, s.ldb_()} : dims{s.sb_(), s.ldb_(), 1});
  dnnl::memory::desc c(dims{B, M, N}, c_bf16 ? dt::bf16 : dt::f32, dims{s.sc_(), s.ldc_(), 1});
  dnnl::memory::desc bias;
  if (s.bias)
    bias = dnnl::memory::desc(dims{1, 1, N}, dt::f32, dims{N, N, 1});
  dnnl::primitive_attr attr;
  if (s.accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
  }
  dnnl::matmul::desc d = s.bias ? dnnl::matmul::desc(a, b, bias, c) : dnnl::matmul::desc(a, b, c);
  dnnl::matmul::primitive_desc pd(d, attr, eng_);
  ++created_;
  return mm_.emplace(key, MmPrim{dnnl::matmul(pd), a, b, c, bias}).first->second;
}

uint16_t* Engine::to_bf16(std::vector<uint16_t>& dst, const float* src, size_t n) {
  if (dst.size() < n)
    dst.resize(n);
  uint16_t* d = dst.data();
#pragma omp parallel for simd schedule(static) if (n >= (size_t(1) << 15))
  for (size_t i = 0; i < n; ++i)
    d[i] = bf16_round(src[i]);
  return d;
}

void Engine::set_activation_region(const float* p, size_t n) {
  acts_ = {p, p + n};
  // Copies of memory no region covers any more are dropped.
  for (auto it = copies_.begin(); it != copies_.end();)
    if (declared(it->first, it->second.n))
      ++it;
    else
      it = copies_.erase(it);
  invalidate_stable();
}

void Engine::release() {
  for (auto& [base, c] : copies_)
    if (held_.holds(base, c.n))
      c.valid = false;
  held_ = {};
}

uint16_t* Engine::bf16_output(const float* p, size_t n) {
  if (precision_ != Precision::bf16)
    return nullptr;
  Bf16Copy& c = copies_[p];
  if (c.data.size() < n)
    c.data.resize(n);
  c.n = n;
  c.valid = c.produced = true;
  return c.data.data();
}

const uint16_t* Engine::operand_bf16(std::vector<uint16_t>& scratch, const float* src, size_t n) {
  // A valid copy that covers the operand (a sub-block of a tensor included):
  // a producer's output always, a rounding only when reuse is on.
  for (auto it = copies_.upper_bound(src); it != copies_.begin();) {
    --it;
    const Bf16Copy& c = it->second;
    if (c.valid && (c.produced || reuse_) && src + n <= it->first + c.n)
      return c.data.data() + (src - it->first);
  }
  if (reuse_ && (declared(src, n) || held_.holds(src, n))) {
    Bf16Copy& c = copies_[src];
    to_bf16(c.data, src, n);
    c.n = n;
    c.valid = true;
    c.produced = false;
    return c.data.data();
  }
  return to_bf16(scratch, src, n);
}

void Engine::matmul(float* c, const float* a, const float* b, const float* bias,
                    const MatmulShape& s) {
  run_matmul(c, false, a, b, bias, s);
}

void Engine::matmul(uint16_t* c, const float* a, const float* b, const float* bias,
                    const MatmulShape& s) {
  if (precision_ != Precision::bf16)
    throw std::logic_error("Engine::matmul: a bf16 result needs bf16 mode");
  if (s.accumulate)
    throw std::invalid_argument("Engine::matmul: a bf16 result cannot be accumulated into");
  run_matmul(c, true, a, b, bias, s);
}

void Engine::run_matmul(void* c, bool c_bf16, const float* a, const float* b, const float* bias,
                        const MatmulShape& s) {
  if ((bias != nullptr) != s.bias)
    throw std::invalid_argument("Engine::matmul: bias pointer and MatmulShape::bias disagree");
  MmPrim& p = matmul_prim(s, c_bf16);
  void* ap = const_cast<float*>(a);
  void* bp = const_cast<float*>(b);
  if (precision_ == Precision::bf16)
    timed("bf16 rounding", [&] {
      ap = const_cast<uint16_t*>(operand_bf16(bf_a_, a, size_t(s.span_a())));
      bp = const_cast<uint16_t*>(operand_bf16(bf_b_, b, size_t(s.span_b())));
    });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(p.a, eng_, ap)},
                                             {DNNL_ARG_WEIGHTS, dnnl::memory(p.b, eng_, bp)},
                                             {DNNL_ARG_DST, dnnl::memory(p.c, eng_, c)}};
  if (s.bias)
    args.emplace(DNNL_ARG_BIAS, dnnl::memory(p.bias, eng_, const_cast<float*>(bias)));
  timed("matmul", [&] {
    p.prim.execute(stream_, args);
    stream_.wait();
  });
}

Engine::LnPrims& Engine::ln_prims(int64_t rows, int64_t C, bool shift) {
  auto key = std::make_tuple(rows, C, shift);
  auto it = ln_.find(key);
  if (it != ln_.end())
    return *it->second;
  auto p = std::make_unique<LnPrims>();
  p->data = dnnl::memory::desc(dims{rows, C}, dt::f32, tag::ab);
  p->stat = dnnl::memory::desc(dims{rows}, dt::f32, tag::a);
  p->scale = dnnl::memory::desc(dims{C}, dt::f32, tag::a);
  auto flags = dnnl::normalization_flags::use_scale;
  if (shift)
    flags = flags | dnnl::normalization_flags::use_shift;
  dnnl::layer_normalization_forward::desc fd(dnnl::prop_kind::forward_training, p->data, p->stat,
                                             1e-5f, flags);
  dnnl::layer_normalization_forward::primitive_desc fpd(fd, eng_);
  dnnl::layer_normalization_backward::desc bd(dnnl::prop_kind::backward, p->data, p->data, p->stat,
                                              1e-5f, flags);
  dnnl::layer_normalization_backward::primitive_desc bpd(bd, eng_, fpd);
  p->fwd = dnnl::layer_normalization_forward(fpd);
  p->bwd = dnnl::layer_normalization_backward(bpd);
  created_ += 2;
  return *ln_.emplace(key, std::move(p)).first->second;
}

void Engine::layernorm_forward(float* out, float* mean, float* var, const float* x, const float* w,
                               const float* b, int64_t rows, int64_t C) {
  LnPrims& p = ln_prims(rows, C, b != nullptr);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(p.data, eng_, const_cast<float*>(x))},
      {DNNL_ARG_DST, dnnl::memory(p.data, eng_, out)},
      {DNNL_ARG_MEAN, dnnl::memory(p.stat, eng_, mean)},
      {DNNL_ARG_VARIANCE, dnnl::memory(p.stat, eng_, var)},
      {DNNL_ARG_SCALE, dnnl::memory(p.scale, eng_, const_cast<float*>(w))}};
  if (b)
    args.emplace(DNNL_ARG_SHIFT, dnnl::memory(p.scale, eng_, const_cast<float*>(b)));
  timed("layernorm", [&] {
    p.fwd.execute(stream_, args);
    stream_.wait();
  });
}

void Engine::layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x,
                                const float* mean, const float* var, const float* w, const float* b,
                                int64_t rows, int64_t C) {
  LnPrims& p = ln_prims(rows, C, b != nullptr);
  ln_dw_.resize(size_t(C));
  ln_db_.resize(size_t(C));
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(p.data, eng_, const_cast<float*>(x))},
      {DNNL_ARG_DIFF_DST, dnnl::memory(p.data, eng_, const_cast<float*>(dout))},
      {DNNL_ARG_MEAN, dnnl::memory(p.stat, eng_, const_cast<float*>(mean))},
      {DNNL_ARG_VARIANCE, dnnl::memory(p.stat, eng_, const_cast<float*>(var))},
      {DNNL_ARG_SCALE, dnnl::memory(p.scale, eng_, const_cast<float*>(w))},
      {DNNL_ARG_DIFF_SRC, dnnl::memory(p.data, eng_, dx)},
      {DNNL_ARG_DIFF_SCALE, dnnl::memory(p.scale, eng_, ln_dw_.data())}};
  if (b) {
    args.emplace(DNNL_ARG_SHIFT, dnnl::memory(p.scale, eng_, const_cast<float*>(b)));
    args.emplace(DNNL_ARG_DIFF_SHIFT, dnnl::memory(p.scale, eng_, ln_db_.data()));
  }
  timed("layernorm", [&] {
    p.bwd.execute(stream_, args);
    stream_.wait();
  });
  for (int64_t i = 0; i < C; ++i)
    dw[i] += ln_dw_[size_t(i)];
  if (b && db)
    for (int64_t i = 0; i < C; ++i)
      db[i] += ln_db_[size_t(i)];
}

Engine::EltPrims& Engine::elt_prims(int64_t n) {
  auto it = elt_.find(n);
  if (it != elt_.end())
    return *it->second;
  auto p = std::make_unique<EltPrims>();
  p->md = dnnl::memory::desc(dims{n}, dt::f32, tag::a);
  dnnl::eltwise_forward::desc fd(dnnl::prop_kind::forward_training,
                                 dnnl::algorithm::eltwise_gelu_erf, p->md, 0.f, 0.f);
  dnnl::eltwise_forward::primitive_desc fpd(fd, eng_);
  dnnl::eltwise_backward::desc bd(dnnl::algorithm::eltwise_gelu_erf, p->md, p->md, 0.f, 0.f);
  dnnl::eltwise_backward::primitive_desc bpd(bd, eng_, fpd);
  p->fwd = dnnl::eltwise_forward(fpd);
  p->bwd = dnnl::eltwise_backward(bpd);
  created_ += 2;
  return *elt_.emplace(n, std::move(p)).first->second;
}

void Engine::gelu_forward(float* out, const float* x, int64_t n) {
  EltPrims& p = elt_prims(n);
  timed("gelu", [&] {
    p.fwd.execute(stream_, {{DNNL_ARG_SRC, dnnl::memory(p.md, eng_, const_cast<float*>(x))},
                            {DNNL_ARG_DST, dnnl::memory(p.md, eng_, out)}});
    stream_.wait();
  });
}

void Engine::gelu_backward(float* dx, const float* dout, const float* x, int64_t n) {
  EltPrims& p = elt_prims(n);
  timed("gelu", [&] {
    p.bwd.execute(stream_, {{DNNL_ARG_SRC, dnnl::memory(p.md, eng_, const_cast<float*>(x))},
                            {DNNL_ARG_DIFF_DST, dnnl::memory(p.md, eng_, const_cast<float*>(dout))},
                            {DNNL_ARG_DIFF_SRC, dnnl::memory(p.md, eng_, dx)}});
    stream_.wait();
  });
}

} // namespace orbitrain::compute
