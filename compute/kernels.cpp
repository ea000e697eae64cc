// Hand-written kernels (see kernels.hpp). Loops are simple enough for GCC to
// vectorise; OpenMP splits independent rows (or columns, for reductions over
// rows) with a static schedule so the arithmetic order is fixed.
#include "compute/kernels.hpp"

#include "compute/bf16.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <omp.h>
#include <type_traits>
#include <vector>

namespace orbitrain::compute {

namespace {

// Below this many elements a kernel runs on the calling thread: a parallel
// region costs more than the work (and, on a busy machine, a barrier can wait
// for a descheduled thread). Results do not depend on the thread count.
constexpr int64_t kParallelMin = 1 << 15;

// exp(x) for float, branch-free so that loops calling it vectorise: x = n*ln2 + r
// with |r| <= ln2/2, exp(r) by a degree-6 Taylor/Horner polynomial (relative
// error < 2e-7 on the reduced range), 2^n built in the exponent bits. Inputs
// below -87 flush to ~0 (what softmax needs); inputs here are always <= 0.
inline float fast_exp(float x) {
  x = std::max(x, -87.f);
  const float n = std::nearbyint(x * 1.44269504088896341f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f; // ln2 split hi/lo
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// The sum and the max of 16 partial results, as a tree: a chain of 15
// dependent adds would cost more than the vectorised loop that made them.
inline float sum_of16(float* p) {
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k)
      p[k] += p[k + w];
  return p[0];
}
inline float max_of16(float* p) {
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k)
      p[k] = p[k] > p[k + w] ? p[k] : p[k + w];
  return p[0];
}

// sum of f(i) for i in [0,n), in 16 partial sums (vectorised), then the tail.
template <typename F> inline float sum16(int n, F&& f) {
  float part[16] = {};
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k)
      part[k] += f(i + k);
  for (; i < n; ++i)
    part[0] += f(i);
  return sum_of16(part);
}

// Row t of a causal (T,T) matrix has t+1 live entries. The loops over it run
// to the next multiple of 16 (at most T) and mask the entries past t, so that
// they vectorise without a scalar remainder loop: rows are short (T/2 live
// entries on average), and remainders had cost as much as the vector part.
inline int live_span(int t, int T) {
  return std::min(T, (t + 16) & ~15);
}

} // namespace

void encoder_forward(float* out, const int32_t* idx, const float* wte, const float* wpe, int B,
                     int T, int C) {
#pragma omp parallel for schedule(static) if (int64_t(B) * T * C >= kParallelMin)
  for (int64_t bt = 0; bt < int64_t(B) * T; ++bt) {
    const int t = int(bt % T);
    const float* e = wte + int64_t(idx[bt]) * C;
    const float* p = wpe + int64_t(t) * C;
    float* o = out + bt * C;
    for (int c = 0; c < C; ++c)
      o[c] = e[c] + p[c];
  }
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* idx, int B, int T,
                      int C, int V) {
  (void)V;
  // Each thread owns a range of channels and walks the rows in order, so the
  // summation order (and result) is the same for any thread count.
#pragma omp parallel if (int64_t(B) * T * C >= kParallelMin)
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int c0 = int(int64_t(C) * id / nt), c1 = int(int64_t(C) * (id + 1) / nt);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t) {
        const int64_t bt = int64_t(b) * T + t;
        const float* d = dout + bt * C;
        float* we = dwte + int64_t(idx[bt]) * C;
        float* wp = dwpe + int64_t(t) * C;
        for (int c = c0; c < c1; ++c) {
          we[c] += d[c];
          wp[c] += d[c];
        }
      }
  }
}

namespace {

// Copies hs values from src to dst, converting between f32 and bf16.
template <typename Out, typename In> inline void copy_row(Out* dst, const In* src, int hs) {
  if constexpr (std::is_same_v<Out, In>) {
    std::memcpy(dst, src, sizeof(Out) * size_t(hs));
  } else {
#pragma omp simd
    for (int i = 0; i < hs; ++i)
      store(dst + i, load(src[i]));
  }
}

} // namespace

template <typename Out, typename In>
void split_heads(Out* q, Out* k, Out* v, const In* qkv, int B, int T, int NH, int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        const In* src = qkv + (int64_t(b) * T + t) * 3 * C + int64_t(h) * hs;
        const int64_t o = ((int64_t(b) * NH + h) * T + t) * hs;
        copy_row(q + o, src, hs);
        copy_row(k + o, src + C, hs);
        copy_row(v + o, src + 2 * C, hs);
      }
}

template <typename Out, typename In>
void merge_heads3(Out* dqkv, const In* dq, const In* dk, const In* dv, int B, int T, int NH,
                  int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        Out* dst = dqkv + (int64_t(b) * T + t) * 3 * C + int64_t(h) * hs;
        const int64_t o = ((int64_t(b) * NH + h) * T + t) * hs;
        copy_row(dst, dq + o, hs);
        copy_row(dst + C, dk + o, hs);
        copy_row(dst + 2 * C, dv + o, hs);
      }
}

template <typename Out, typename In>
void merge_heads(Out* y, const In* yh, int B, int T, int NH, int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t)
        copy_row(y + (int64_t(b) * T + t) * C + int64_t(h) * hs,
                 yh + ((int64_t(b) * NH + h) * T + t) * hs, hs);
}

template <typename Out, typename In>
void split_heads1(Out* yh, const In* y, int B, int T, int NH, int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t)
        copy_row(yh + ((int64_t(b) * NH + h) * T + t) * hs,
                 y + (int64_t(b) * T + t) * C + int64_t(h) * hs, hs);
}

namespace {

// max of s[0..t] over the live span n. Kept in 16 running maxima, which GCC
// vectorises; a plain max reduction stays scalar (std::max is not
// associative for NaN), and its dependency chain made the softmax forward
// compute-bound.
template <typename In> inline float row_max(const In* s, int t, int n) {
  constexpr int L = 16;
  float m[L];
  for (int k = 0; k < L; ++k)
    m[k] = -INFINITY;
  int j = 0;
  for (; j + L <= n; j += L)
    for (int k = 0; k < L; ++k) {
      const float x = load(s[j + k]); // loaded unconditionally, or GCC keeps the loop scalar
      const float v = j + k <= t ? x : -INFINITY;
      m[k] = m[k] > v ? m[k] : v;
    }
  for (; j <= t; ++j)
    m[0] = m[0] > load(s[j]) ? m[0] : load(s[j]);
  return max_of16(m);
}

} // namespace

template <typename Out, typename In>
void causal_softmax_forward(Out* att, const In* scores, float scale, int64_t N, int T) {
#pragma omp parallel if (N * T * T >= kParallelMin)
  {
    // exp of one row, so that att is written once (scores may be att).
    std::vector<float> ex(static_cast<size_t>(T));
    float* e = ex.data();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N * T; ++r) {
      const int t = int(r % T), n = live_span(t, T);
      const In* s = scores + r * T;
      Out* a = att + r * T;
      const float mx = row_max(s, t, n);
      // The masked exps, kept in e, and their sum (the tail loop only runs
      // when T is not a multiple of 16).
      const float inv = 1.f / sum16(n, [&](int j) {
                          const float x = fast_exp((load(s[j]) - mx) * scale);
                          e[j] = j <= t ? x : 0.f;
                          return e[j];
                        });
#pragma omp simd
      for (int j = 0; j < n; ++j)
        store(a + j, e[j] * inv);
      for (int j = n; j < T; ++j)
        a[j] = 0;
    }
  }
}

template <typename Out, typename In>
void causal_softmax_backward(Out* dpre, const In* datt, const In* att, float scale, int64_t N,
                             int T) {
#pragma omp parallel for schedule(static) if (N * T * T >= kParallelMin)
  for (int64_t r = 0; r < N * T; ++r) {
    const int t = int(r % T), n = live_span(t, T);
    const In* a = att + r * T;
    const In* d = datt + r * T;
    Out* o = dpre + r * T;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < n; ++j) {
      const float x = load(a[j]) * load(d[j]);
      dot += j <= t ? x : 0.f;
    }
#pragma omp simd
    for (int j = 0; j < n; ++j) {
      const float x = scale * load(a[j]) * (load(d[j]) - dot);
      store(o + j, j <= t ? x : 0.f);
    }
    for (int j = n; j < T; ++j)
      o[j] = 0;
  }
}

namespace {
// Abramowitz and Stegun 7.1.26: erf(z) = 1 - t P(t) exp(-z^2), t = 1/(1+pz), z >= 0.
constexpr float kErfP = 0.3275911f, kErfA1 = 0.254829592f, kErfA2 = -0.284496736f,
                kErfA3 = 1.421413741f, kErfA4 = -1.453152027f, kErfA5 = 1.061405429f;

// erf(x / sqrt 2) and exp(-x^2 / 2).
inline void erf_and_gauss(float x, float& erf, float& gauss) {
  const float z = std::fabs(x) * 0.70710678118654752f;
  const float t = 1.f / (1.f + kErfP * z);
  const float poly = t * (kErfA1 + t * (kErfA2 + t * (kErfA3 + t * (kErfA4 + t * kErfA5))));
  gauss = fast_exp(-z * z);
  const float erf_abs = 1.f - poly * gauss;
  erf = x < 0.f ? -erf_abs : erf_abs;
}
} // namespace

template <typename Out, typename In>
void gelu_forward(Out* out, uint16_t* grad, const In* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float xi = load(x[i]);
    float erf, gauss;
    erf_and_gauss(xi, erf, gauss);
    const float phi = 0.5f * (1.f + erf);
    store(out + i, xi * phi);
    // d/dx [x Phi(x)] = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi)
    grad[i] = bf16_round(phi + xi * gauss * 0.39894228040143268f);
  }
}

template <typename Out>
void gelu_backward(Out* dx, const uint16_t* dout, const uint16_t* grad, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    store(dx + i, load(dout[i]) * load(grad[i]));
}

template void gelu_backward(float*, const uint16_t*, const uint16_t*, int64_t);
template void gelu_backward(uint16_t*, const uint16_t*, const uint16_t*, int64_t);

// f32 mode: f32 in and out. bf16 mode: bf16 in (matmul results) and bf16
// out, or f32 out where a bias gradient needs the tensor in f32.
using bf16_t = uint16_t;
#define ORBITRAIN_KERNELS(Out, In)                                                                 \
  template void split_heads(Out*, Out*, Out*, const In*, int, int, int, int);                      \
  template void merge_heads3(Out*, const In*, const In*, const In*, int, int, int, int);           \
  template void merge_heads(Out*, const In*, int, int, int, int);                                  \
  template void split_heads1(Out*, const In*, int, int, int, int);                                 \
  template void causal_softmax_forward(Out*, const In*, float, int64_t, int);                      \
  template void causal_softmax_backward(Out*, const In*, const In*, float, int64_t, int);          \
  template void gelu_forward(Out*, uint16_t*, const In*, int64_t);
ORBITRAIN_KERNELS(float, float)
ORBITRAIN_KERNELS(bf16_t, bf16_t)
ORBITRAIN_KERNELS(float, bf16_t)
#undef ORBITRAIN_KERNELS

namespace {

constexpr float kLnEps = 1e-5f;

// Rows per block of the backward's parameter-gradient sums.
constexpr int64_t kLnRowBlock = 64;

} // namespace

template <typename Out>
void layernorm_forward(Out* out, float* mean, float* var, float* x_copy, const float* x,
                       const float* w, const float* b, int64_t rows, int C) {
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    if (x_copy)
      std::memcpy(x_copy + r * C, xr, sizeof(float) * size_t(C));
    Out* o = out + r * C;
    const float m = sum16(C, [&](int i) { return xr[i]; }) / float(C);
    const float v = sum16(C, [&](int i) { return (xr[i] - m) * (xr[i] - m); }) / float(C);
    const float rs = 1.f / std::sqrt(v + kLnEps);
    if (b) {
#pragma omp simd
      for (int i = 0; i < C; ++i)
        store(o + i, (xr[i] - m) * rs * w[i] + b[i]);
    } else {
#pragma omp simd
      for (int i = 0; i < C; ++i)
        store(o + i, (xr[i] - m) * rs * w[i]);
    }
    mean[r] = m;
    var[r] = v;
  }
}

void layernorm_backward_add(float* dres, uint16_t* dres_bf16, float* dw, float* db,
                            const float* dout, const float* x, const float* mean, const float* var,
                            const float* w, int64_t rows, int C) {
  const int64_t nblocks = (rows + kLnRowBlock - 1) / kLnRowBlock;
  // Per block of rows: partial sums of dout * xhat (dw) and of dout (db).
  std::vector<float> part(size_t(nblocks) * 2 * size_t(C));
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    float* pw = part.data() + size_t(blk) * 2 * size_t(C);
    float* pb = pw + C;
    const int64_t r1 = std::min(rows, (blk + 1) * kLnRowBlock);
    for (int64_t r = blk * kLnRowBlock; r < r1; ++r) {
      const float* xr = x + r * C;
      const float* d = dout + r * C;
      float* dr = dres + r * C;
      const float m = mean[r], rs = 1.f / std::sqrt(var[r] + kLnEps);
      // dx = rs * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w
      const float gm = sum16(C, [&](int i) { return d[i] * w[i]; }) / float(C);
      const float gxm = sum16(C, [&](int i) { return d[i] * w[i] * (xr[i] - m) * rs; }) / float(C);
#pragma omp simd
      for (int i = 0; i < C; ++i) {
        const float xh = (xr[i] - m) * rs;
        dr[i] += rs * (d[i] * w[i] - gm - xh * gxm);
        pw[i] += d[i] * xh;
        pb[i] += d[i];
      }
      if (dres_bf16) {
        uint16_t* o = dres_bf16 + r * C;
#pragma omp simd
        for (int i = 0; i < C; ++i)
          o[i] = bf16_round(dr[i]);
      }
    }
  }
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const float* pw = part.data() + size_t(blk) * 2 * size_t(C);
    for (int i = 0; i < C; ++i)
      dw[i] += pw[i];
    if (db)
      for (int i = 0; i < C; ++i)
        db[i] += pw[C + i];
  }
}

template void layernorm_forward(float*, float*, float*, float*, const float*, const float*,
                                const float*, int64_t, int);
template void layernorm_forward(uint16_t*, float*, float*, float*, const float*, const float*,
                                const float*, int64_t, int);

double crossentropy_forward(float* probs, const float* logits, const int32_t* targets, int64_t BT,
                            int V) {
  std::vector<double> row_loss(static_cast<size_t>(BT));
#pragma omp parallel for schedule(static) if (BT * V >= kParallelMin)
  for (int64_t i = 0; i < BT; ++i) {
    const float* l = logits + i * V;
    float* p = probs + i * V;
    float mx = -INFINITY;
    for (int j = 0; j < V; ++j)
      mx = std::max(mx, l[j]);
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) {
      p[j] = fast_exp(l[j] - mx);
      sum += p[j];
    }
    const float inv = 1.f / sum;
    for (int j = 0; j < V; ++j)
      p[j] *= inv;
    if (targets)
      row_loss[size_t(i)] = double(mx) + std::log(double(sum)) - double(l[targets[i]]);
  }
  double total = 0.0;
  for (double x : row_loss)
    total += x;
  return BT ? total / double(BT) : 0.0;
}

void crossentropy_backward(float* dlogits, const float* probs, const int32_t* targets, float scale,
                           int64_t BT, int V) {
#pragma omp parallel for schedule(static) if (BT * V >= kParallelMin)
  for (int64_t i = 0; i < BT; ++i) {
    const float* p = probs + i * V;
    float* d = dlogits + i * V;
    for (int j = 0; j < V; ++j)
      d[j] = p[j] * scale;
    d[targets[i]] -= scale;
  }
}

void bias_backward(float* db, const float* dout, int64_t rows, int64_t N) {
#pragma omp parallel if (rows * N >= kParallelMin)
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = N * id / nt, c1 = N * (id + 1) / nt;
    for (int64_t r = 0; r < rows; ++r) {
      const float* d = dout + r * N;
      for (int64_t c = c0; c < c1; ++c)
        db[c] += d[c];
    }
  }
}

void accumulate(float* out, const float* a, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    out[i] += a[i];
}

} // namespace orbitrain::compute
