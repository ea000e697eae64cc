// Plain reference twins of every op the model uses: straightforward loops
// with double accumulation, no oneDNN, no OpenMP. The tests compare the fast
// Engine ops and kernels.hpp against these. Same argument conventions as the
// fast versions (outputs first; see engine.hpp and kernels.hpp).
#pragma once

#include "compute/engine.hpp"

#include <cstdint>

namespace orbitrain::compute::ref {

// c (batch,M,N) = op(a) * op(b) (+ bias) (+ c if s.accumulate).
void matmul(float* c, const float* a, const float* b, const float* bias, const MatmulShape& s);
// out (rows,C); mean, var (rows); b may be null.
void layernorm_forward(float* out, float* mean, float* var, const float* x, const float* w,
                       const float* b, int64_t rows, int64_t C);
// dx (rows,C) overwritten; dw, db (C) accumulated; db may be null.
void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x,
                        const float* w, int64_t rows, int64_t C);
void gelu_forward(float* out, const float* x, int64_t n);
void gelu_backward(float* dx, const float* dout, const float* x, int64_t n);
void causal_softmax_forward(float* att, float scale, int64_t N, int T);
void causal_softmax_backward(float* dpre, const float* datt, const float* att, float scale,
                             int64_t N, int T);
double crossentropy_forward(float* probs, const float* logits, const int32_t* targets, int64_t BT,
                            int V);
void crossentropy_backward(float* dlogits, const float* probs, const int32_t* targets, float scale,
                           int64_t BT, int V);
void encoder_forward(float* out, const int32_t* idx, const float* wte, const float* wpe, int B,
                     int T, int C);
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* idx, int B, int T,
                      int C);

} // namespace orbitrain::compute::ref
