// Every fast op (oneDNN Engine ops and kernels.hpp) against its plain
// reference twin in reference.hpp, on shapes like the model's. Tolerances:
// f32 ops agree to 1e-5 relative (+1e-6 absolute, more where a long
// reduction feeds the result); bf16 matmuls to the error of rounding inputs
// to 8 mantissa bits (2e-2 relative of the result scale).
#include "compute/bf16.hpp"
#include "compute/engine.hpp"
#include "compute/kernels.hpp"
#include "compute/reference.hpp"
#include "tests/compute/test_util.hpp"

#include <cmath>
#include <gtest/gtest.h>
#include <vector>

namespace orbitrain::compute {
namespace {

using testing::all_close;
using testing::randn;

class MatmulTest : public ::testing::TestWithParam<MatmulShape> {};

TEST_P(MatmulTest, MatchesReferenceF32) {
  const MatmulShape s = GetParam();
  Engine e;
  auto a = randn(size_t(s.span_a()), 1);
  auto b = randn(size_t(s.span_b()), 2);
  auto bias = randn(size_t(s.N), 3);
  auto c = randn(size_t((s.batch - 1) * s.sc_() + (s.M - 1) * s.ldc_() + s.N), 4);
  auto c_ref = c;
  e.matmul(c.data(), a.data(), b.data(), s.bias ? bias.data() : nullptr, s);
  ref::matmul(c_ref.data(), a.data(), b.data(), s.bias ? bias.data() : nullptr, s);
  // Entries are sums of K products of N(0,1) values: scale ~ sqrt(K).
  EXPECT_TRUE(all_close(c, c_ref, 1e-5, 1e-5 * std::sqrt(double(s.K))));
}

TEST_P(MatmulTest, MatchesReferenceBf16) {
  const MatmulShape s = GetParam();
  Engine e(Precision::bf16);
  auto a = randn(size_t(s.span_a()), 1);
  auto b = randn(size_t(s.span_b()), 2);
  auto bias = randn(size_t(s.N), 3);
  auto c = randn(size_t((s.batch - 1) * s.sc_() + (s.M - 1) * s.ldc_() + s.N), 4);
  auto c_ref = c;
  e.matmul(c.data(), a.data(), b.data(), s.bias ? bias.data() : nullptr, s);
  ref::matmul(c_ref.data(), a.data(), b.data(), s.bias ? bias.data() : nullptr, s);
  EXPECT_TRUE(all_close(c, c_ref, 0.0, 2e-2 * std::sqrt(double(s.K))));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulTest,
    ::testing::Values(MatmulShape{1, 37, 48, 16, false, true, false, true},   // linear fwd
                      MatmulShape{1, 37, 16, 48, false, false, false, false}, // linear dx
                      MatmulShape{1, 48, 16, 37, true, false, true, false},   // linear dW +=
                      MatmulShape{6, 9, 9, 8, false, true, false, false},     // q k^T
                      MatmulShape{6, 9, 8, 9, true, false, false, false},     // att^T dy
                      MatmulShape{1, 64, 96, 128, false, true, true, true},
                      // sub-blocks of (10,10) score and (10,4) head matrices, as
                      // the causal attention uses them
                      MatmulShape{3, 5, 10, 4, false, true, false, false, 4, 4, 10, 40, 40, 100},
                      MatmulShape{3, 5, 4, 5, true, false, false, false, 10, 4, 4, 100, 40, 40},
                      MatmulShape{3, 5, 4, 10, false, false, false, false, 10, 4, 4, 100, 40, 40}),
    [](const ::testing::TestParamInfo<MatmulShape>& i) {
      const MatmulShape& s = i.param;
      return "b" + std::to_string(s.batch) + "_m" + std::to_string(s.M) + "_n" +
             std::to_string(s.N) + "_k" + std::to_string(s.K) + (s.trans_a ? "_ta" : "") +
             (s.trans_b ? "_tb" : "") + (s.accumulate ? "_acc" : "") + (s.bias ? "_bias" : "") +
             (s.lda || s.ldb || s.ldc ? "_strided" : "");
    });

std::vector<float> widen(const std::vector<uint16_t>& h) {
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i)
    f[i] = bf16_to_float(h[i]);
  return f;
}

std::vector<uint16_t> rounded(const std::vector<float>& f) {
  std::vector<uint16_t> h(f.size());
  for (size_t i = 0; i < f.size(); ++i)
    h[i] = bf16_round(f[i]);
  return h;
}

// A producer's bf16 output is what the matmuls read, for the whole tensor
// and for sub-blocks of it, while the f32 memory it names holds anything;
// after invalidate_stable() the f32 memory is read (rounded) again.
TEST(EngineTest, Bf16OutputIsWhatMatmulsRead) {
  Engine e(Precision::bf16);
  const int64_t M = 6, K = 8, N = 5;
  std::vector<float> a(size_t(M * K), std::nanf("")), b = randn(size_t(K * N), 31);
  const auto a_vals = randn(a.size(), 32);
  uint16_t* ab = e.bf16_output(a.data(), a.size());
  ASSERT_NE(ab, nullptr);
  for (size_t i = 0; i < a.size(); ++i)
    ab[i] = bf16_round(a_vals[i]);
  const auto a_used = widen(std::vector<uint16_t>(ab, ab + a.size()));
  const auto b_used = widen(rounded(b));
  std::vector<float> c(size_t(M * N)), c_ref(c.size());
  e.matmul(c.data(), a.data(), b.data(), nullptr, {1, M, N, K, false, false, false, false});
  ref::matmul(c_ref.data(), a_used.data(), b_used.data(), nullptr,
              {1, M, N, K, false, false, false, false});
  EXPECT_TRUE(all_close(c, c_ref, 1e-5, 1e-5));
  // rows 2..4, columns 4..7 of a (a sub-block with row pitch K)
  const MatmulShape sub{1, 3, N, 4, false, false, false, false, K, N, N, 0, 0, 0};
  std::vector<float> cs(size_t(3 * N)), cs_ref(cs.size());
  e.matmul(cs.data(), a.data() + 2 * K + 4, b.data(), nullptr, sub);
  ref::matmul(cs_ref.data(), a_used.data() + 2 * K + 4, b_used.data(), nullptr, sub);
  EXPECT_TRUE(all_close(cs, cs_ref, 1e-5, 1e-5));
  // Invalidated: the f32 memory is read again (NaN here).
  e.invalidate_stable();
  e.matmul(c.data(), a.data(), b.data(), nullptr, {1, M, N, K, false, false, false, false});
  EXPECT_TRUE(std::isnan(c[0]));
  // f32 mode has no bf16 outputs.
  Engine f;
  EXPECT_EQ(f.bf16_output(a.data(), a.size()), nullptr);
}

// A matmul with a bf16 result writes the f32 result (bias included)
// rounded to nearest even: a strided, batched shape and a dense one with a
// bias. f32 mode and accumulation refuse it.
TEST(EngineTest, Bf16ResultIsTheF32OneRounded) {
  Engine e(Precision::bf16);
  for (const MatmulShape& s :
       {MatmulShape{3, 5, 10, 4, false, true, false, false, 4, 4, 10, 40, 40, 100},
        MatmulShape{1, 37, 29, 64, false, true, false, true}}) {
    const auto a = randn(size_t(s.span_a()), 33), b = randn(size_t(s.span_b()), 34),
               bias = randn(size_t(s.N), 35);
    const size_t nc = size_t((s.batch - 1) * s.sc_() + (s.M - 1) * s.ldc_() + s.N);
    std::vector<float> c(nc);
    std::vector<uint16_t> cb(nc);
    e.matmul(c.data(), a.data(), b.data(), s.bias ? bias.data() : nullptr, s);
    e.matmul(cb.data(), a.data(), b.data(), s.bias ? bias.data() : nullptr, s);
    EXPECT_EQ(cb, rounded(c)) << "M " << s.M;
  }
  std::vector<float> a(64), b(64), c(64);
  std::vector<uint16_t> cb(64);
  EXPECT_THROW(e.matmul(cb.data(), a.data(), b.data(), nullptr, {1, 8, 8, 8, false, false, true}),
               std::invalid_argument);
  Engine f;
  EXPECT_THROW(f.matmul(cb.data(), a.data(), b.data(), nullptr, {1, 8, 8, 8}), std::logic_error);
}

TEST(EngineTest, ReusesPrimitives) {
  Engine e;
  std::vector<float> a(64), b(64), c(64);
  const MatmulShape s{1, 8, 8, 8, false, false, false, false};
  e.matmul(c.data(), a.data(), b.data(), nullptr, s);
  const size_t n = e.primitives_created();
  for (int i = 0; i < 3; ++i)
    e.matmul(c.data(), a.data(), b.data(), nullptr, s);
  EXPECT_EQ(e.primitives_created(), n);
  EXPECT_THROW(e.matmul(c.data(), a.data(), b.data(), b.data(), s), std::invalid_argument);
}

class LayerNormTest : public ::testing::TestWithParam<bool> {};

TEST_P(LayerNormTest, ForwardAndBackwardMatchReference) {
  const bool shift = GetParam();
  const int64_t rows = 33, C = 48;
  Engine e;
  auto x = randn(size_t(rows * C), 5, 2.f);
  for (int64_t r = 0; r < rows; ++r) // non-zero row means
    for (int64_t i = 0; i < C; ++i)
      x[size_t(r * C + i)] += float(r % 5) - 2.f;
  auto w = randn(size_t(C), 6), b = randn(size_t(C), 7), dout = randn(size_t(rows * C), 8);
  std::vector<float> out(x.size()), mean(static_cast<size_t>(rows)), var(static_cast<size_t>(rows));
  std::vector<float> out_r(x.size()), mean_r(static_cast<size_t>(rows)),
      var_r(static_cast<size_t>(rows));
  e.layernorm_forward(out.data(), mean.data(), var.data(), x.data(), w.data(),
                      shift ? b.data() : nullptr, rows, C);
  ref::layernorm_forward(out_r.data(), mean_r.data(), var_r.data(), x.data(), w.data(),
                         shift ? b.data() : nullptr, rows, C);
  EXPECT_TRUE(all_close(out, out_r, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(mean, mean_r, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(var, var_r, 1e-5, 1e-6));

  std::vector<float> dx(x.size()), dw(size_t(C), 1.f), db(size_t(C), 1.f);
  std::vector<float> dx_r(x.size()), dw_r(size_t(C), 1.f), db_r(size_t(C), 1.f);
  e.layernorm_backward(dx.data(), dw.data(), shift ? db.data() : nullptr, dout.data(), x.data(),
                       mean.data(), var.data(), w.data(), shift ? b.data() : nullptr, rows, C);
  ref::layernorm_backward(dx_r.data(), dw_r.data(), shift ? db_r.data() : nullptr, dout.data(),
                          x.data(), w.data(), rows, C);
  EXPECT_TRUE(all_close(dx, dx_r, 1e-4, 1e-5));
  EXPECT_TRUE(all_close(dw, dw_r, 1e-5, 1e-5)); // accumulated onto 1
  EXPECT_TRUE(all_close(db, db_r, 1e-5, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Shift, LayerNormTest, ::testing::Bool());

TEST(GeluTest, ForwardAndBackwardMatchReference) {
  const int64_t n = 4099;
  Engine e;
  auto x = randn(size_t(n), 9, 3.f), dout = randn(size_t(n), 10);
  std::vector<float> y(static_cast<size_t>(n)), y_r(static_cast<size_t>(n)),
      dx(static_cast<size_t>(n)), dx_r(static_cast<size_t>(n));
  e.gelu_forward(y.data(), x.data(), n);
  ref::gelu_forward(y_r.data(), x.data(), n);
  EXPECT_TRUE(all_close(y, y_r, 1e-5, 1e-6));
  e.gelu_backward(dx.data(), dout.data(), x.data(), n);
  ref::gelu_backward(dx_r.data(), dout.data(), x.data(), n);
  EXPECT_TRUE(all_close(dx, dx_r, 1e-5, 1e-6));
  // In place, as the model uses it.
  std::vector<float> d = dout;
  e.gelu_backward(d.data(), d.data(), x.data(), n);
  EXPECT_TRUE(all_close(d, dx_r, 1e-5, 1e-6));
}

// Kernels run serially below 2^15 elements and in parallel above: each test
// covers both sizes.
class KernelTest : public ::testing::TestWithParam<bool> {
protected:
  int scale() const { return GetParam() ? 8 : 1; }
};

TEST_P(KernelTest, CausalSoftmaxMatchesReference) {
  const int64_t N = 5 * scale();
  const int T = 17;
  auto att = randn(size_t(N * T * T), 11, 3.f);
  auto att_r = att;
  causal_softmax_forward(att.data(), att.data(), 0.25f, N, T);
  ref::causal_softmax_forward(att_r.data(), 0.25f, N, T);
  EXPECT_TRUE(all_close(att, att_r, 1e-5, 1e-7));
  EXPECT_EQ(att[1], 0.f); // row 0 sees only position 0
  EXPECT_FLOAT_EQ(att[0], 1.f);
  auto datt = randn(att.size(), 12);
  std::vector<float> d(att.size()), d_r(att.size());
  causal_softmax_backward(d.data(), datt.data(), att.data(), 0.25f, N, T);
  ref::causal_softmax_backward(d_r.data(), datt.data(), att.data(), 0.25f, N, T);
  EXPECT_TRUE(all_close(d, d_r, 1e-4, 1e-6));
}

// bf16 mode runs the kernels on bf16 inputs (matmul results). Fed bf16
// values, a kernel's bf16 output is its f32 output on the same values
// rounded to nearest even, bit for bit (the softmax backward to one bf16
// step), and its f32 output (where bf16 mode uses one) is the f32 output.
TEST_P(KernelTest, Bf16KernelsAreTheF32OnesRounded) {
  const int B = 2 * scale(), T = 48, NH = 3, hs = 16, C = NH * hs;
  const int64_t BT = int64_t(B) * T, N = int64_t(B) * NH;
  const auto qkvb = rounded(randn(size_t(BT * 3 * C), 41));
  const auto qkv = widen(qkvb);
  std::vector<float> q(size_t(BT * C)), k(q.size()), v(q.size());
  std::vector<uint16_t> qb(q.size()), kb(q.size()), vb(q.size());
  split_heads(q.data(), k.data(), v.data(), qkv.data(), B, T, NH, hs);
  split_heads(qb.data(), kb.data(), vb.data(), qkvb.data(), B, T, NH, hs);
  EXPECT_EQ(qb, rounded(q));
  EXPECT_EQ(kb, rounded(k));
  EXPECT_EQ(vb, rounded(v));
  std::vector<float> y(q.size()), yh(q.size()), back(qkv.size()), backf(qkv.size());
  std::vector<uint16_t> yb(q.size()), yhb(q.size()), backb(qkv.size());
  merge_heads(y.data(), q.data(), B, T, NH, hs);
  merge_heads(yb.data(), qb.data(), B, T, NH, hs);
  EXPECT_EQ(yb, rounded(y));
  split_heads1(yh.data(), y.data(), B, T, NH, hs);
  split_heads1(yhb.data(), yb.data(), B, T, NH, hs);
  EXPECT_EQ(yhb, rounded(yh));
  merge_heads3(back.data(), q.data(), k.data(), v.data(), B, T, NH, hs);
  merge_heads3(backb.data(), qb.data(), kb.data(), vb.data(), B, T, NH, hs);
  merge_heads3(backf.data(), qb.data(), kb.data(), vb.data(), B, T, NH, hs);
  EXPECT_EQ(backb, rounded(back));
  EXPECT_EQ(backf, back);

  // Softmax at a T that is a multiple of 16 and at one that is not.
  for (int Ts : {48, 17}) {
    const auto scoresb = rounded(randn(size_t(N * Ts * Ts), 42, 3.f));
    auto att = widen(scoresb);
    std::vector<uint16_t> attb(att.size());
    causal_softmax_forward(att.data(), att.data(), 0.25f, N, Ts);
    causal_softmax_forward(attb.data(), scoresb.data(), 0.25f, N, Ts);
    EXPECT_EQ(attb, rounded(att)) << "T " << Ts;
    // The bf16 backward reads bf16 probabilities: as the f32 one fed the
    // same values.
    const auto dattb = rounded(randn(att.size(), 43));
    std::vector<float> d(att.size());
    std::vector<uint16_t> db(att.size());
    causal_softmax_backward(d.data(), widen(dattb).data(), widen(attb).data(), 0.25f, N, Ts);
    causal_softmax_backward(db.data(), dattb.data(), attb.data(), 0.25f, N, Ts);
    // (within one bf16 step: the two instantiations may split the row's
    // dot product into vector lanes differently)
    const auto d_rounded = rounded(d);
    size_t far = 0;
    for (size_t i = 0; i < db.size(); ++i)
      far += std::abs(int(db[i]) - int(d_rounded[i])) > 1 ? 1 : 0;
    EXPECT_EQ(far, 0u) << "T " << Ts;
  }

  // GELU: the forward's output and its derivative, then the backward from
  // that derivative.
  const auto xb = rounded(randn(size_t(BT * 4 * C) + 3, 44, 3.f));
  const auto x = widen(xb);
  const int64_t n = int64_t(x.size());
  std::vector<float> g(x.size()), g_r(x.size()), grad_r(x.size());
  std::vector<uint16_t> gb(x.size()), grad(x.size()), grad2(x.size());
  gelu_forward(g.data(), grad.data(), x.data(), n);
  gelu_forward(gb.data(), grad2.data(), xb.data(), n);
  EXPECT_EQ(gb, rounded(g));
  EXPECT_EQ(grad2, grad);
  ref::gelu_forward(g_r.data(), x.data(), n);
  EXPECT_TRUE(all_close(g, g_r, 1e-5, 1e-6));
  ref::gelu_backward(grad_r.data(), std::vector<float>(x.size(), 1.f).data(), x.data(), n);
  EXPECT_TRUE(all_close(widen(grad), grad_r, 1.0 / 256, 1e-6)); // one bf16 rounding
  const auto doutb = rounded(randn(x.size(), 45));
  std::vector<float> dx(x.size()), dx_r(x.size());
  std::vector<uint16_t> dxb(x.size());
  gelu_backward(dx.data(), doutb.data(), grad.data(), n);
  gelu_backward(dxb.data(), doutb.data(), grad.data(), n);
  EXPECT_EQ(dxb, rounded(dx));
  for (size_t i = 0; i < x.size(); ++i)
    dx_r[i] = bf16_to_float(doutb[i]) * bf16_to_float(grad[i]);
  EXPECT_EQ(dx, dx_r);
}

TEST_P(KernelTest, LayerNormKernelsMatchReference) {
  const int64_t rows = 40 * scale() + 3;
  const int C = 72; // not a multiple of 16: the tail of the row sums runs
  auto x = randn(size_t(rows * C), 51, 2.f);
  for (int64_t r = 0; r < rows; ++r) // non-zero row means
    for (int i = 0; i < C; ++i)
      x[size_t(r * C + i)] += float(r % 5) - 2.f;
  const auto w = randn(size_t(C), 52), b = randn(size_t(C), 53), dout = randn(x.size(), 54);
  for (const bool shift : {false, true}) {
    const float* bp = shift ? b.data() : nullptr;
    std::vector<float> out(x.size()), mean(static_cast<size_t>(rows)), var(mean.size());
    std::vector<float> out_r(x.size()), mean_r(mean.size()), var_r(mean.size());
    std::vector<uint16_t> outb(x.size());
    std::vector<float> x_copy(x.size());
    layernorm_forward(out.data(), mean.data(), var.data(), x_copy.data(), x.data(), w.data(), bp,
                      rows, C);
    EXPECT_EQ(x_copy, x);
    ref::layernorm_forward(out_r.data(), mean_r.data(), var_r.data(), x.data(), w.data(), bp, rows,
                           C);
    EXPECT_TRUE(all_close(out, out_r, 1e-5, 1e-5));
    EXPECT_TRUE(all_close(mean, mean_r, 1e-5, 1e-6));
    EXPECT_TRUE(all_close(var, var_r, 1e-5, 1e-6));
    layernorm_forward(outb.data(), mean.data(), var.data(), nullptr, x.data(), w.data(), bp, rows,
                      C);
    EXPECT_EQ(outb, rounded(out));

    const auto dres0 = randn(x.size(), 55);
    auto dres = dres0;
    std::vector<uint16_t> dresb(x.size());
    std::vector<float> dw(size_t(C), 1.f), db(size_t(C), 1.f), dx_r(x.size());
    std::vector<float> dw_r(size_t(C), 1.f), db_r(size_t(C), 1.f);
    layernorm_backward_add(dres.data(), dresb.data(), dw.data(), shift ? db.data() : nullptr,
                           dout.data(), x.data(), mean.data(), var.data(), w.data(), rows, C);
    ref::layernorm_backward(dx_r.data(), dw_r.data(), shift ? db_r.data() : nullptr, dout.data(),
                            x.data(), w.data(), rows, C);
    std::vector<float> dres_r(x.size());
    for (size_t i = 0; i < x.size(); ++i)
      dres_r[i] = dres0[i] + dx_r[i];
    EXPECT_TRUE(all_close(dres, dres_r, 1e-4, 1e-5));
    EXPECT_EQ(dresb, rounded(dres));
    EXPECT_TRUE(all_close(dw, dw_r, 1e-5, 1e-5)); // accumulated onto 1
    EXPECT_TRUE(all_close(db, shift ? db_r : std::vector<float>(size_t(C), 1.f), 1e-5, 1e-5));
    // Without a bf16 copy, the same f32 result.
    auto dres2 = dres0;
    std::vector<float> dw2(size_t(C), 1.f);
    layernorm_backward_add(dres2.data(), nullptr, dw2.data(), nullptr, dout.data(), x.data(),
                           mean.data(), var.data(), w.data(), rows, C);
    EXPECT_EQ(dres2, dres);
    EXPECT_EQ(dw2, dw);
  }
}

TEST_P(KernelTest, CrossEntropyMatchesReference) {
  const int64_t BT = 29 * 20 * scale();
  const int V = 65;
  auto logits = randn(size_t(BT * V), 13, 2.f);
  auto targets = testing::randint(size_t(BT), V, 14);
  std::vector<float> p(logits.size()), p_r(logits.size()), d(logits.size()), d_r(logits.size());
  const double loss = crossentropy_forward(p.data(), logits.data(), targets.data(), BT, V);
  const double loss_r = ref::crossentropy_forward(p_r.data(), logits.data(), targets.data(), BT, V);
  EXPECT_NEAR(loss, loss_r, 1e-5 * loss_r);
  EXPECT_TRUE(all_close(p, p_r, 1e-5, 1e-7));
  crossentropy_backward(d.data(), p.data(), targets.data(), 0.5f, BT, V);
  ref::crossentropy_backward(d_r.data(), p_r.data(), targets.data(), 0.5f, BT, V);
  EXPECT_TRUE(all_close(d, d_r, 1e-5, 1e-7));
}

TEST_P(KernelTest, EncoderMatchesReference) {
  const int B = 3 * scale(), T = 7 * 8, C = 10 * 8, V = 5;
  auto wte = randn(size_t(V * C), 15), wpe = randn(size_t(T * C), 16);
  auto idx = testing::randint(size_t(B * T), V, 17);
  std::vector<float> out(static_cast<size_t>(B * T * C)), out_r(out.size());
  encoder_forward(out.data(), idx.data(), wte.data(), wpe.data(), B, T, C);
  ref::encoder_forward(out_r.data(), idx.data(), wte.data(), wpe.data(), B, T, C);
  EXPECT_TRUE(all_close(out, out_r, 0, 0));
  auto dout = randn(out.size(), 18);
  std::vector<float> dwte(wte.size()), dwpe(wpe.size()), dwte_r(wte.size()), dwpe_r(wpe.size());
  encoder_backward(dwte.data(), dwpe.data(), dout.data(), idx.data(), B, T, C, V);
  ref::encoder_backward(dwte_r.data(), dwpe_r.data(), dout.data(), idx.data(), B, T, C);
  EXPECT_TRUE(all_close(dwte, dwte_r, 1e-6, 1e-6));
  EXPECT_TRUE(all_close(dwpe, dwpe_r, 1e-6, 1e-6));
}

TEST_P(KernelTest, HeadSplitAndMergeAreInverse) {
  const int B = 2 * scale() * scale(), T = 5 * 8, NH = 3, hs = 4 * 4, C = NH * hs;
  auto qkv = randn(size_t(B * T * 3 * C), 19);
  std::vector<float> q(static_cast<size_t>(B * T * C)), k(q.size()), v(q.size()), back(qkv.size());
  split_heads(q.data(), k.data(), v.data(), qkv.data(), B, T, NH, hs);
  // q of (b=1, h=2, t=3, i=1) is qkv[b, t, h*hs + i]
  EXPECT_EQ(q[size_t(((1 * NH + 2) * T + 3) * hs + 1)],
            qkv[size_t((1 * T + 3) * 3 * C + 2 * hs + 1)]);
  EXPECT_EQ(v[0], qkv[size_t(2 * C)]);
  merge_heads3(back.data(), q.data(), k.data(), v.data(), B, T, NH, hs);
  EXPECT_EQ(back, qkv);
  std::vector<float> y(q.size()), yh(q.size());
  merge_heads(y.data(), q.data(), B, T, NH, hs);
  split_heads1(yh.data(), y.data(), B, T, NH, hs);
  EXPECT_EQ(yh, q);
}

TEST_P(KernelTest, BiasBackwardAccumulates) {
  const int64_t rows = 13 * 30 * scale(), N = 17;
  auto d = randn(size_t(rows * N), 20);
  std::vector<float> db(size_t(N), 2.f);
  bias_backward(db.data(), d.data(), rows, N);
  for (int64_t j = 0; j < N; ++j) {
    double s = 2;
    for (int64_t r = 0; r < rows; ++r)
      s += d[size_t(r * N + j)];
    EXPECT_NEAR(db[size_t(j)], s, 1e-6 * double(rows)); // float sum of rows terms
  }
}

INSTANTIATE_TEST_SUITE_P(Size, KernelTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "parallel" : "serial";
                         });

} // namespace
} // namespace orbitrain::compute
