// Hand-written kernels (see kernels.hpp). Loops are simple enough for GCC to
// vectorise; OpenMP splits independent rows (or columns, for reductions over
// rows) with a static schedule so the arithmetic order is fixed.
#include "compute/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <omp.h>
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

void split_heads(float* q, float* k, float* v, const float* qkv, int B, int T, int NH, int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        const float* src = qkv + (int64_t(b) * T + t) * 3 * C + int64_t(h) * hs;
        const int64_t o = ((int64_t(b) * NH + h) * T + t) * hs;
        std::memcpy(q + o, src, sizeof(float) * size_t(hs));
        std::memcpy(k + o, src + C, sizeof(float) * size_t(hs));
        std::memcpy(v + o, src + 2 * C, sizeof(float) * size_t(hs));
      }
}

void merge_heads3(float* dqkv, const float* dq, const float* dk, const float* dv, int B, int T,
                  int NH, int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        float* dst = dqkv + (int64_t(b) * T + t) * 3 * C + int64_t(h) * hs;
        const int64_t o = ((int64_t(b) * NH + h) * T + t) * hs;
        std::memcpy(dst, dq + o, sizeof(float) * size_t(hs));
        std::memcpy(dst + C, dk + o, sizeof(float) * size_t(hs));
        std::memcpy(dst + 2 * C, dv + o, sizeof(float) * size_t(hs));
      }
}

void merge_heads(float* y, const float* yh, int B, int T, int NH, int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t)
        std::memcpy(y + (int64_t(b) * T + t) * C + int64_t(h) * hs,
                    yh + ((int64_t(b) * NH + h) * T + t) * hs, sizeof(float) * size_t(hs));
}

void split_heads1(float* yh, const float* y, int B, int T, int NH, int hs) {
  const int C = NH * hs;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(B) * T * NH * hs >= kParallelMin)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t)
        std::memcpy(yh + ((int64_t(b) * NH + h) * T + t) * hs,
                    y + (int64_t(b) * T + t) * C + int64_t(h) * hs, sizeof(float) * size_t(hs));
}

void causal_softmax_forward(float* att, float scale, int64_t N, int T) {
#pragma omp parallel for schedule(static) if (N * T * T >= kParallelMin)
  for (int64_t r = 0; r < N * T; ++r) {
    const int t = int(r % T);
    float* a = att + r * T;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j <= t; ++j)
      mx = std::max(mx, a[j]);
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= t; ++j) {
      const float e = fast_exp((a[j] - mx) * scale);
      a[j] = e;
      sum += e;
    }
    const float inv = 1.f / sum;
    for (int j = 0; j <= t; ++j)
      a[j] *= inv;
    for (int j = t + 1; j < T; ++j)
      a[j] = 0.f;
  }
}

void causal_softmax_backward(float* dpre, const float* datt, const float* att, float scale,
                             int64_t N, int T) {
#pragma omp parallel for schedule(static) if (N * T * T >= kParallelMin)
  for (int64_t r = 0; r < N * T; ++r) {
    const int t = int(r % T);
    const float* a = att + r * T;
    const float* d = datt + r * T;
    float* o = dpre + r * T;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j <= t; ++j)
      dot += a[j] * d[j];
    for (int j = 0; j <= t; ++j)
      o[j] = scale * a[j] * (d[j] - dot);
    for (int j = t + 1; j < T; ++j)
      o[j] = 0.f;
  }
}

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

void add(float* out, const float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

void accumulate(float* out, const float* a, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    out[i] += a[i];
}

} // namespace orbitrain::compute
