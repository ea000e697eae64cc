// Hand-written kernels for the elementwise and data-movement parts of the
// model that oneDNN has no fused primitive for: embeddings, head split/merge,
// the fused scale + causal mask + softmax of attention, cross-entropy, bias
// gradients, and bf16 mode's GELU and layer norm. Free functions, outputs
// first, shapes in the comments. They parallelise with OpenMP over
// independent rows, so results do not depend on the thread count. Plain
// twins live in reference.hpp.
#pragma once

#include <cstdint>

namespace orbitrain::compute {

// out (B,T,C) = wte[idx[b,t]] + wpe[t]; idx (B,T), wte (V,C), wpe (>=T,C).
void encoder_forward(float* out, const int32_t* idx, const float* wte, const float* wpe, int B,
                     int T, int C);
// dwte (V,C) += scatter of dout; dwpe (T,C) += sum over b of dout; dout (B,T,C).
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* idx, int B, int T,
                      int C, int V);

// The kernels templated on Out and In read f32 (In = float) or bf16 (In =
// uint16_t, see bf16.hpp) and write f32 (Out = float) or bf16 (Out =
// uint16_t). bf16 mode runs them on the bf16 results of matmuls and writes
// bf16 for tensors that only bf16 matmuls read; they compute in f32, and a
// bf16 result is the f32 one rounded to nearest even.

// q, k, v (B,NH,T,hs) from qkv (B,T,3C), C = NH*hs.
template <typename Out, typename In>
void split_heads(Out* q, Out* k, Out* v, const In* qkv, int B, int T, int NH, int hs);
// dqkv (B,T,3C) from dq, dk, dv (B,NH,T,hs): the adjoint of split_heads (overwrites).
template <typename Out, typename In>
void merge_heads3(Out* dqkv, const In* dq, const In* dk, const In* dv, int B, int T, int NH,
                  int hs);
// y (B,T,C) from yh (B,NH,T,hs).
template <typename Out, typename In>
void merge_heads(Out* y, const In* yh, int B, int T, int NH, int hs);
// yh (B,NH,T,hs) from y (B,T,C): the adjoint of merge_heads.
template <typename Out, typename In>
void split_heads1(Out* yh, const In* y, int B, int T, int NH, int hs);

// att (N,T,T): row t is softmax(scale * scores[t, 0..t]) followed by zeros
// (causal mask). N = B*NH. An f32 att may be scores itself (in place).
template <typename Out, typename In>
void causal_softmax_forward(Out* att, const In* scores, float scale, int64_t N, int T);
// dpre (N,T,T) = scale * att * (datt - sum_j att*datt), 0 above the diagonal.
// An f32 dpre may alias an f32 datt.
template <typename Out, typename In>
void causal_softmax_backward(Out* dpre, const In* datt, const In* att, float scale, int64_t N,
                             int T);

// out (n) = gelu_erf(x) = x/2 (1 + erf(x/sqrt 2)), erf by Abramowitz and
// Stegun 7.1.26 (absolute error < 1.5e-7), as oneDNN's eltwise computes it;
// and grad (n) = gelu_erf'(x) in bf16, which is all the backward needs. bf16
// mode's GELU (f32 mode uses oneDNN's eltwise): oneDNN 2.6 has no fast
// primitive that reads or writes bf16 here (its binary with a GELU post-op
// falls back to a reference loop, 140 ms for the small model's 3M values).
template <typename Out, typename In>
void gelu_forward(Out* out, uint16_t* grad, const In* x, int64_t n);
// dx (n) = dout * grad, grad as gelu_forward wrote it.
template <typename Out>
void gelu_backward(Out* dx, const uint16_t* dout, const uint16_t* grad, int64_t n);

// out (rows,C) = (x - mean) / sqrt(var + 1e-5) * w (+ b); mean and var (rows)
// are kept for the backward (var is the biased variance, as oneDNN's). b may
// be null. x_copy, when not null, receives a copy of x in the same pass (the
// residual stream, which the next matmul adds into). bf16 mode's layer norm,
// which writes its output (read only by matmuls) in bf16: oneDNN 2.6's has
// one data type for source and result.
template <typename Out>
void layernorm_forward(Out* out, float* mean, float* var, float* x_copy, const float* x,
                       const float* w, const float* b, int64_t rows, int C);
// The layer norm's backward added to the residual stream's gradient:
// dres (rows,C) += dx, and dres_bf16 (when not null) = dres rounded to bf16,
// the copy the next matmuls read; dw, db (C) += the parameter gradients (db
// may be null). mean, var as the forward kept them. Sums over rows go by
// fixed blocks of rows in a fixed order, so results do not depend on the
// thread count.
void layernorm_backward_add(float* dres, uint16_t* dres_bf16, float* dw, float* db,
                            const float* dout, const float* x, const float* mean, const float* var,
                            const float* w, int64_t rows, int C);

// probs (BT,V) = softmax(logits); returns the mean over rows of
// -log probs[target] (accumulated in double). targets (BT) in [0,V).
double crossentropy_forward(float* probs, const float* logits, const int32_t* targets, int64_t BT,
                            int V);
// dlogits (BT,V) = (probs - onehot(target)) * scale (overwrites).
void crossentropy_backward(float* dlogits, const float* probs, const int32_t* targets, float scale,
                           int64_t BT, int V);

// db (N) += sum over rows of dout (rows,N).
void bias_backward(float* db, const float* dout, int64_t rows, int64_t N);
// out (n) += a.
void accumulate(float* out, const float* a, int64_t n);

} // namespace orbitrain::compute
