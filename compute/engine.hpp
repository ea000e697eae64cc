// Engine: the oneDNN-backed operations the model is built from. It owns one
// oneDNN CPU engine and stream and a cache of primitives keyed by shape, so
// each primitive is created once and reused on every step. oneDNN threads with
// OpenMP: call an Engine from a single thread only (each calling thread gets
// its own OpenMP pool), and set the thread count with omp_set_num_threads.
//
// Matmuls run in f32, or in bf16 (bf16 inputs, f32 accumulation, an f32 or
// bf16 result) when the Engine is built with Precision::bf16; their bf16
// inputs are rounded here or written in bf16 by their producers
// (bf16_output). Layer norm runs in f32, and so does the eltwise GELU (bf16
// mode uses the GELU kernels in kernels.hpp). Every op has a plain twin in
// reference.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace orbitrain::compute {

enum class Precision { f32, bf16 };
[[nodiscard]] Precision parse_precision(const std::string& s); // "f32" | "bf16"
[[nodiscard]] const char* to_string(Precision p);

// C = op(A) * op(B) (+ bias) (+ C if accumulate), batched: for each of `batch`
// matrices, A is logically (M,K), B (K,N), C (M,N), all row-major and dense.
// trans_a: A is stored as (K,M). trans_b: B is stored as (N,K) (PyTorch's Linear
// weight layout). bias, when given, is (N) and broadcast over rows.
//
// Optional strides (0: dense) address sub-blocks of larger matrices: lda, ldb,
// ldc are the row pitches of the operands as stored, sa, sb, sc the distances
// between consecutive matrices of the batch.
struct MatmulShape {
  int64_t batch = 1, M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false, accumulate = false, bias = false;
  int64_t lda = 0, ldb = 0, ldc = 0, sa = 0, sb = 0, sc = 0;

  [[nodiscard]] int64_t lda_() const { return lda ? lda : (trans_a ? M : K); }
  [[nodiscard]] int64_t ldb_() const { return ldb ? ldb : (trans_b ? K : N); }
  [[nodiscard]] int64_t ldc_() const { return ldc ? ldc : N; }
  [[nodiscard]] int64_t sa_() const { return sa ? sa : M * K; }
  [[nodiscard]] int64_t sb_() const { return sb ? sb : K * N; }
  [[nodiscard]] int64_t sc_() const { return sc ? sc : M * N; }
  // Floats spanned by each operand, first to last element.
  [[nodiscard]] int64_t span_a() const {
    return (batch - 1) * sa_() + ((trans_a ? K : M) - 1) * lda_() + (trans_a ? M : K);
  }
  [[nodiscard]] int64_t span_b() const {
    return (batch - 1) * sb_() + ((trans_b ? N : K) - 1) * ldb_() + (trans_b ? K : N);
  }
  auto key() const {
    return std::tie(batch, M, N, K, trans_a, trans_b, accumulate, bias, lda, ldb, ldc, sa, sb, sc);
  }
  bool operator<(const MatmulShape& o) const { return key() < o.key(); }
};

class Engine {
public:
  explicit Engine(Precision precision = Precision::f32);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  [[nodiscard]] Precision precision() const { return precision_; }

  // c (batch,M,N) = a * b (+ bias) (+ c); see MatmulShape.
  void matmul(float* c, const float* a, const float* b, const float* bias, const MatmulShape& s);
  // bf16 mode only: the same with c written in bf16 (f32 accumulation, the
  // bias added in f32, then one rounding to nearest even), for a result that
  // the next kernel reads in bf16. Not with s.accumulate.
  void matmul(uint16_t* c, const float* a, const float* b, const float* bias, const MatmulShape& s);

  // out (rows,C) = (x - mean) / sqrt(var + 1e-5) * w + b; mean, var are (rows)
  // and are kept for the backward pass. b may be null (no shift).
  void layernorm_forward(float* out, float* mean, float* var, const float* x, const float* w,
                         const float* b, int64_t rows, int64_t C);
  // dx (rows,C) is overwritten; dw, db (C) are accumulated (+=). db null when b is.
  void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x,
                          const float* mean, const float* var, const float* w, const float* b,
                          int64_t rows, int64_t C);

  // out (n) = gelu_erf(x); may run in place. (bf16 mode's forward, which
  // writes bf16, is the gelu_forward kernel in kernels.hpp.)
  void gelu_forward(float* out, const float* x, int64_t n);
  // dx (n) = dout * gelu_erf'(x) (overwritten); may alias dout.
  void gelu_backward(float* dx, const float* dout, const float* x, int64_t n);

  // bf16 mode: matmul operands are rounded to bf16 before each matmul. Those
  // lying inside a region the owner declares unchanging are rounded once and
  // reused until invalidate_stable(), which the owner calls whenever that
  // memory may have changed (Gpt: every forward):
  // - set_stable_region: the model's parameters;
  // - set_activation_region: the activations a forward writes and the
  //   backward only reads (each operand is then rounded once per step,
  //   not again for the weight gradients).
  // The memory must outlive the Engine or a later call for the same region.
  void set_stable_region(const float* p, size_t n) {
    params_ = {p, p + n};
    invalidate_stable();
  }
  void set_activation_region(const float* p, size_t n);
  void invalidate_stable() {
    for (auto& [ptr, e] : copies_)
      e.valid = false;
  }
  // bf16 mode: a tensor [p, p+n) that only bf16 matmuls read can be written
  // by its producer directly in bf16, into the memory this returns; matmul
  // operands inside [p, p+n) then read that copy (until invalidate_stable()
  // or a release() of a hold() around it), and the f32 tensor at p need not
  // be written at all. Returns null in f32 mode: the producer then writes
  // the f32 tensor.
  [[nodiscard]] uint16_t* bf16_output(const float* p, size_t n);
  // bf16 mode: operands inside [p, p+n) are rounded once until release():
  // for a gradient that two matmuls in a row read (the input gradient and
  // the weight gradient of one layer). The caller must not write the memory
  // in between. A later hold() releases the previous one.
  void hold(const float* p, size_t n) {
    release();
    held_ = {p, p + n};
  }
  void release();
  // false: every f32 operand is rounded at every use, as if no region were
  // declared (to check that reuse changes no result). Producers' bf16
  // outputs are still read: they are the tensors themselves.
  void set_bf16_reuse(bool on) {
    reuse_ = on;
    invalidate_stable();
  }

  // Wall time per kind of operation, summed over calls while profiling is on
  // (`orbitrain bench compute --profile`). Off by default: it then costs one
  // branch per call.
  void set_profiling(bool on) {
    profiling_ = on;
    op_seconds_.clear();
  }
  [[nodiscard]] const std::map<std::string, double>& op_seconds() const { return op_seconds_; }
  // Runs f(), adding its wall time to `op` while profiling.
  template <typename F> void timed(const char* op, F&& f) {
    if (!profiling_) {
      f();
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    f();
    op_seconds_[op] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  // Number of primitives created so far (to check that they are reused).
  [[nodiscard]] size_t primitives_created() const { return created_; }

private:
  struct LnPrims;
  struct EltPrims;
  struct MmPrim {
    dnnl::matmul prim;
    dnnl::memory::desc a, b, c, bias;
  };
  MmPrim& matmul_prim(const MatmulShape& s, bool c_bf16);
  void run_matmul(void* c, bool c_bf16, const float* a, const float* b, const float* bias,
                  const MatmulShape& s);
  LnPrims& ln_prims(int64_t rows, int64_t C, bool shift);
  EltPrims& elt_prims(int64_t n);
  uint16_t* to_bf16(std::vector<uint16_t>& dst, const float* src, size_t n);
  const uint16_t* operand_bf16(std::vector<uint16_t>& scratch, const float* src, size_t n);
  // A bf16 copy of the floats [base, base+n), keyed by base: rounded by
  // operand_bf16 or written by a producer (bf16_output).
  struct Bf16Copy {
    std::vector<uint16_t> data;
    size_t n = 0;
    bool valid = false, produced = false;
  };
  struct Region {
    const float *begin = nullptr, *end = nullptr;
    bool holds(const float* p, size_t n) const { return begin && p >= begin && p + n <= end; }
  };

  Precision precision_;
  dnnl::engine eng_;
  dnnl::stream stream_;
  std::map<std::pair<MatmulShape, bool>, MmPrim> mm_; // keyed by shape and bf16 result
  std::map<std::tuple<int64_t, int64_t, bool>, std::unique_ptr<LnPrims>> ln_;
  std::map<int64_t, std::unique_ptr<EltPrims>> elt_;
  std::vector<uint16_t> bf_a_, bf_b_;
  // Inside the parameters or the activations (the regions set_*_region declares).
  bool declared(const float* p, size_t n) const { return params_.holds(p, n) || acts_.holds(p, n); }
  Region params_, acts_, held_;
  bool reuse_ = true;
  std::map<const float*, Bf16Copy> copies_;
  std::vector<float> ln_dw_, ln_db_;
  size_t created_ = 0;
  bool profiling_ = false;
  std::map<std::string, double> op_seconds_;
};

} // namespace orbitrain::compute
