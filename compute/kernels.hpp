// Hand-written kernels for the elementwise and data-movement parts of the
// model that oneDNN has no fused primitive for: embeddings, head split/merge,
// the fused scale + causal mask + softmax of attention, cross-entropy, bias
// gradients. Free functions, outputs first, shapes in the comments. They
// parallelise with OpenMP over independent rows, so results do not depend on
// the thread count. Plain twins live in reference.hpp.
#pragma once

#include <cstdint>

namespace orbitrain::compute {

// out (B,T,C) = wte[idx[b,t]] + wpe[t]; idx (B,T), wte (V,C), wpe (>=T,C).
void encoder_forward(float* out, const int32_t* idx, const float* wte, const float* wpe, int B,
                     int T, int C);
// dwte (V,C) += scatter of dout; dwpe (T,C) += sum over b of dout; dout (B,T,C).
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* idx, int B, int T,
                      int C, int V);

// q, k, v (B,NH,T,hs) from qkv (B,T,3C), C = NH*hs.
void split_heads(float* q, float* k, float* v, const float* qkv, int B, int T, int NH, int hs);
// dqkv (B,T,3C) from dq, dk, dv (B,NH,T,hs): the adjoint of split_heads (overwrites).
void merge_heads3(float* dqkv, const float* dq, const float* dk, const float* dv, int B, int T,
                  int NH, int hs);
// y (B,T,C) from yh (B,NH,T,hs).
void merge_heads(float* y, const float* yh, int B, int T, int NH, int hs);
// yh (B,NH,T,hs) from y (B,T,C): the adjoint of merge_heads.
void split_heads1(float* yh, const float* y, int B, int T, int NH, int hs);

// att (N,T,T): in place, row t becomes softmax(scale * att[t, 0..t]) and the
// entries past t are set to 0 (causal mask). N = B*NH.
void causal_softmax_forward(float* att, float scale, int64_t N, int T);
// dpre (N,T,T) = scale * att * (datt - sum_j att*datt), 0 above the diagonal.
// dpre may alias datt.
void causal_softmax_backward(float* dpre, const float* datt, const float* att, float scale,
                             int64_t N, int T);

// probs (BT,V) = softmax(logits); returns the mean over rows of
// -log probs[target] (accumulated in double). targets (BT) in [0,V).
double crossentropy_forward(float* probs, const float* logits, const int32_t* targets, int64_t BT,
                            int V);
// dlogits (BT,V) = (probs - onehot(target)) * scale (overwrites).
void crossentropy_backward(float* dlogits, const float* probs, const int32_t* targets, float scale,
                           int64_t BT, int V);

// db (N) += sum over rows of dout (rows,N).
void bias_backward(float* db, const float* dout, int64_t rows, int64_t N);
// out (n) = a + b; out may alias either.
void add(float* out, const float* a, const float* b, int64_t n);
// out (n) += a.
void accumulate(float* out, const float* a, int64_t n);

} // namespace orbitrain::compute
