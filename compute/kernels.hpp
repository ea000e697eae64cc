// Hand-written kernels for the elementwise and data-movement parts of the
// model that oneDNN has no fused primitive for: embeddings, head split/merge,
// the fused scale + causal mask + softmax of attention, cross-entropy, bias
// gradients, and GELU where it must write bf16. Free functions, outputs first, shapes in the
// comments. They parallelise with OpenMP over independent rows, so results do not depend on the
// thread count. Plain twins live in reference.hpp.
#pragma once

#include <cstdint>

namespace orbitrain::compute {

// out (B,T,C) = wte[idx[b,t]] + wpe[t]; idx (B,T), wte (V,C), wpe (>=T,C).
void encoder_forward(float* out, const int32_t* idx, const float* wte, const float* wpe, int B,
                     int T, int C);
// dwte (V,C) += scatter of dout; dwpe (T,C) += sum over b of dout; dout (B,T,C).
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* idx, int B, int T,
                      int C, int V);

// The kernels templated on Out write their result either in f32 (Out =
// float) or in bf16 (Out = uint16_t, see bf16.hpp) for a tensor that only
// bf16 matmuls read: the bf16 result is the f32 one rounded to nearest even.

// q, k, v (B,NH,T,hs) from qkv (B,T,3C), C = NH*hs.
template <typename Out>
void split_heads(Out* q, Out* k, Out* v, const float* qkv, int B, int T, int NH, int hs);
// dqkv (B,T,3C) from dq, dk, dv (B,NH,T,hs): the adjoint of split_heads (overwrites).
template <typename Out>
void merge_heads3(Out* dqkv, const float* dq, const float* dk, const float* dv, int B, int T,
                  int NH, int hs);
// y (B,T,C) from yh (B,NH,T,hs).
template <typename Out> void merge_heads(Out* y, const float* yh, int B, int T, int NH, int hs);
// yh (B,NH,T,hs) from y (B,T,C): the adjoint of merge_heads.
template <typename Out> void split_heads1(Out* yh, const float* y, int B, int T, int NH, int hs);

// att (N,T,T): row t is softmax(scale * scores[t, 0..t]) followed by zeros
// (causal mask). N = B*NH. An f32 att may be scores itself (in place).
template <typename Out>
void causal_softmax_forward(Out* att, const float* scores, float scale, int64_t N, int T);
// dpre (N,T,T) = scale * att * (datt - sum_j att*datt), 0 above the diagonal;
// att in f32 or bf16. An f32 dpre may alias datt.
template <typename Out, typename Att>
void causal_softmax_backward(Out* dpre, const float* datt, const Att* att, float scale, int64_t N,
                             int T);

// out (n) = gelu_erf(x) = x/2 (1 + erf(x/sqrt 2)), erf by Abramowitz and
// Stegun 7.1.26 (absolute error < 1.5e-7), as oneDNN's eltwise computes it.
// bf16 mode's forward: oneDNN 2.6 has no fast primitive that applies GELU
// to f32 and writes bf16 (its binary with a GELU post-op falls back to a
// reference loop, 140 ms for the small model's 3M values).
template <typename Out> void gelu_forward(Out* out, const float* x, int64_t n);
// dx (n) = dout * gelu_erf'(x), with the same erf; may alias dout (f32).
// bf16 mode's backward when no bias gradient needs dx in f32.
template <typename Out> void gelu_backward(Out* dx, const float* dout, const float* x, int64_t n);

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
