// Reference ops: the definitions, written for clarity rather than speed, with
// every sum accumulated in double.
#include "compute/reference.hpp"

#include <cmath>
#include <vector>

namespace orbitrain::compute::ref {

void matmul(float* c, const float* a, const float* b, const float* bias, const MatmulShape& s) {
  const int64_t lda = s.lda_(), ldb = s.ldb_(), ldc = s.ldc_();
  for (int64_t n = 0; n < s.batch; ++n) {
    const float* A = a + n * s.sa_();
    const float* Bm = b + n * s.sb_();
    float* Cm = c + n * s.sc_();
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j) {
        double acc = bias ? double(bias[j]) : 0.0;
        for (int64_t k = 0; k < s.K; ++k) {
          const double av = s.trans_a ? A[k * lda + i] : A[i * lda + k];
          const double bv = s.trans_b ? Bm[j * ldb + k] : Bm[k * ldb + j];
          acc += av * bv;
        }
        if (s.accumulate)
          acc += Cm[i * ldc + j];
        Cm[i * ldc + j] = float(acc);
      }
  }
}

void layernorm_forward(float* out, float* mean, float* var, const float* x, const float* w,
                       const float* b, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    double m = 0, v = 0;
    for (int64_t i = 0; i < C; ++i)
      m += xr[i];
    m /= double(C);
    for (int64_t i = 0; i < C; ++i)
      v += (xr[i] - m) * (xr[i] - m);
    v /= double(C);
    const double rs = 1.0 / std::sqrt(v + 1e-5);
    for (int64_t i = 0; i < C; ++i)
      out[r * C + i] = float((xr[i] - m) * rs * w[i] + (b ? b[i] : 0.0));
    mean[r] = float(m);
    var[r] = float(v);
  }
}

void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x,
                        const float* w, int64_t rows, int64_t C) {
  std::vector<double> dwacc(size_t(C), 0.0), dbacc(size_t(C), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    const float* d = dout + r * C;
    double m = 0, v = 0;
    for (int64_t i = 0; i < C; ++i)
      m += xr[i];
    m /= double(C);
    for (int64_t i = 0; i < C; ++i)
      v += (xr[i] - m) * (xr[i] - m);
    v /= double(C);
    const double rs = 1.0 / std::sqrt(v + 1e-5);
    double dnorm_mean = 0, dnorm_norm_mean = 0;
    for (int64_t i = 0; i < C; ++i) {
      const double xh = (xr[i] - m) * rs;
      const double dn = double(w[i]) * d[i];
      dnorm_mean += dn;
      dnorm_norm_mean += dn * xh;
      dwacc[size_t(i)] += xh * d[i];
      dbacc[size_t(i)] += d[i];
    }
    dnorm_mean /= double(C);
    dnorm_norm_mean /= double(C);
    for (int64_t i = 0; i < C; ++i) {
      const double xh = (xr[i] - m) * rs;
      const double dn = double(w[i]) * d[i];
      dx[r * C + i] = float((dn - dnorm_mean - xh * dnorm_norm_mean) * rs);
    }
  }
  for (int64_t i = 0; i < C; ++i) {
    dw[i] += float(dwacc[size_t(i)]);
    if (db)
      db[i] += float(dbacc[size_t(i)]);
  }
}

void gelu_forward(float* out, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    out[i] = float(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
  }
}

void gelu_backward(float* dx, const float* dout, const float* x, int64_t n) {
  const double inv_sqrt_2pi = 1.0 / std::sqrt(2.0 * M_PI);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    const double cdf = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
    const double pdf = inv_sqrt_2pi * std::exp(-0.5 * v * v);
    dx[i] = float(double(dout[i]) * (cdf + v * pdf));
  }
}

void causal_softmax_forward(float* att, float scale, int64_t N, int T) {
  for (int64_t n = 0; n < N; ++n)
    for (int t = 0; t < T; ++t) {
      float* a = att + (n * T + t) * T;
      double mx = -INFINITY;
      for (int j = 0; j <= t; ++j)
        mx = std::max(mx, double(scale) * a[j]);
      double sum = 0;
      std::vector<double> e(size_t(t) + 1);
      for (int j = 0; j <= t; ++j)
        sum += e[size_t(j)] = std::exp(double(scale) * a[j] - mx);
      for (int j = 0; j < T; ++j)
        a[j] = j <= t ? float(e[size_t(j)] / sum) : 0.f;
    }
}

void causal_softmax_backward(float* dpre, const float* datt, const float* att, float scale,
                             int64_t N, int T) {
  for (int64_t r = 0; r < N * T; ++r) {
    const int t = int(r % T);
    double dot = 0;
    for (int j = 0; j <= t; ++j)
      dot += double(att[r * T + j]) * datt[r * T + j];
    for (int j = 0; j < T; ++j)
      dpre[r * T + j] =
          j <= t ? float(double(scale) * att[r * T + j] * (datt[r * T + j] - dot)) : 0.f;
  }
}

double crossentropy_forward(float* probs, const float* logits, const int32_t* targets, int64_t BT,
                            int V) {
  double total = 0;
  for (int64_t i = 0; i < BT; ++i) {
    const float* l = logits + i * V;
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < V; ++j)
      mx = std::max(mx, double(l[j]));
    for (int j = 0; j < V; ++j)
      sum += std::exp(l[j] - mx);
    for (int j = 0; j < V; ++j)
      probs[i * V + j] = float(std::exp(l[j] - mx) / sum);
    if (targets)
      total += mx + std::log(sum) - l[targets[i]];
  }
  return BT ? total / double(BT) : 0.0;
}

void crossentropy_backward(float* dlogits, const float* probs, const int32_t* targets, float scale,
                           int64_t BT, int V) {
  for (int64_t i = 0; i < BT; ++i)
    for (int j = 0; j < V; ++j)
      dlogits[i * V + j] =
          float((double(probs[i * V + j]) - (j == targets[i] ? 1.0 : 0.0)) * scale);
}

void encoder_forward(float* out, const int32_t* idx, const float* wte, const float* wpe, int B,
                     int T, int C) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c)
        out[(int64_t(b) * T + t) * C + c] =
            wte[int64_t(idx[b * T + t]) * C + c] + wpe[int64_t(t) * C + c];
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* idx, int B, int T,
                      int C) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c) {
        const float d = dout[(int64_t(b) * T + t) * C + c];
        dwte[int64_t(idx[b * T + t]) * C + c] += d;
        dwpe[int64_t(t) * C + c] += d;
      }
}

} // namespace orbitrain::compute::ref
