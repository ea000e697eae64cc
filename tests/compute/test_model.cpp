// Whole-model tests: parameter layout and initialisation, finite-difference
// gradient checks on a tiny configuration, gradient accumulation equal to one
// big batch, pipeline stages composing to the whole model, and bf16 mode.
#include "compute/model.hpp"
#include "tests/compute/test_util.hpp"

#include <cmath>
#include <gtest/gtest.h>
#include <map>
#include <numeric>
#include <vector>

namespace orbitrain::compute {
namespace {

using testing::all_close;
using testing::randint;
using testing::randn;

GptConfig tiny(bool bias, int n_layer = 2) {
  GptConfig c;
  c.n_layer = n_layer, c.n_head = 2, c.n_embd = 8, c.block_size = 6, c.vocab_size = 7;
  c.bias = bias;
  return c;
}

// Gives every parameter a generous random value so that no gradient is
// degenerate (zero biases, unit LN weights would hide mistakes).
void randomise(Gpt& m, uint64_t seed) {
  auto r = randn(m.params().size(), seed, 0.3f);
  for (const ParamSpec& s : m.specs()) {
    const bool ln = s.name.find(".ln_") != std::string::npos && s.shape.size() == 1 &&
                    s.name.find(".weight") != std::string::npos;
    for (size_t i = 0; i < s.numel; ++i)
      m.params()[s.offset + i] = (ln ? 1.f : 0.f) + r[s.offset + i];
  }
}

TEST(ModelTest, LayoutIsContiguousInNanoGptOrder) {
  GptConfig c = GptConfig::builtin("baby");
  c.vocab_size = 65;
  Gpt m(c);
  const auto& s = m.specs();
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s.front().name, "transformer.wte.weight");
  EXPECT_EQ(s[1].name, "transformer.wpe.weight");
  EXPECT_EQ(s[2].name, "transformer.h.0.ln_1.weight");
  EXPECT_EQ(s.back().name, "transformer.ln_f.weight");
  size_t off = 0;
  for (const ParamSpec& p : s) {
    EXPECT_EQ(p.offset, off) << p.name;
    off += p.numel;
    EXPECT_EQ(p.decay, p.shape.size() == 2) << p.name;
  }
  EXPECT_EQ(off, m.params().size());
  EXPECT_EQ(int64_t(off), num_parameters(c));
  EXPECT_EQ(m.grads().size(), m.params().size());
  const ParamSpec* fc = m.find("transformer.h.3.mlp.c_fc.weight");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->shape, (std::vector<int64_t>{512, 128})); // PyTorch (out, in)
  c.bias = true;
  EXPECT_EQ(int64_t(Gpt(c).params().size()), num_parameters(c));
}

TEST(ModelTest, InitialisationFollowsNanoGpt) {
  GptConfig c = GptConfig::builtin("baby");
  c.vocab_size = 65;
  c.bias = true;
  Gpt m(c), m2(c), m3(c);
  m.init_weights(7);
  m2.init_weights(7);
  m3.init_weights(8);
  EXPECT_EQ(0, std::memcmp(m.params().data(), m2.params().data(), m.params().size() * 4));
  EXPECT_NE(0, std::memcmp(m.params().data(), m3.params().data(), m.params().size() * 4));
  auto stddev = [&](const std::string& name) {
    const ParamSpec* s = m.find(name);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < s->numel; ++i) {
      sum += m.params()[s->offset + i];
      sq += double(m.params()[s->offset + i]) * m.params()[s->offset + i];
    }
    const double mean = sum / double(s->numel);
    EXPECT_NEAR(mean, 0.0, 0.002) << name;
    return std::sqrt(sq / double(s->numel) - mean * mean);
  };
  EXPECT_NEAR(stddev("transformer.wte.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("transformer.h.0.mlp.c_fc.weight"), 0.02, 0.0005);
  EXPECT_NEAR(stddev("transformer.h.1.attn.c_proj.weight"), 0.02 / std::sqrt(8.0), 0.0005);
  EXPECT_NEAR(stddev("transformer.h.2.mlp.c_proj.weight"), 0.02 / std::sqrt(8.0), 0.0005);
  const ParamSpec* ln = m.find("transformer.h.0.ln_2.weight");
  const ParamSpec* b = m.find("transformer.h.0.mlp.c_fc.bias");
  for (size_t i = 0; i < ln->numel; ++i)
    EXPECT_EQ(m.params()[ln->offset + i], 1.f);
  for (size_t i = 0; i < b->numel; ++i)
    EXPECT_EQ(m.params()[b->offset + i], 0.f);
}

TEST(ModelTest, InitialLossIsLogVocab) {
  GptConfig c = GptConfig::builtin("baby");
  c.vocab_size = 65;
  Gpt m(c);
  m.init_weights(1);
  const int B = 4, T = 64;
  auto x = randint(size_t(B * T), 65, 2), y = randint(size_t(B * T), 65, 3);
  const float loss = m.forward(x.data(), nullptr, y.data(), B, T);
  EXPECT_NEAR(loss, std::log(65.0), 0.05);
  const float* p = m.probs();
  EXPECT_NEAR(std::accumulate(p, p + 65, 0.0), 1.0, 1e-5);
}

TEST(ModelTest, AttentionIsCausal) {
  Gpt m(tiny(true));
  randomise(m, 61);
  const int T = 6;
  auto x = randint(size_t(T), 7, 62);
  m.forward(x.data(), nullptr, nullptr, 1, T);
  const std::vector<float> p(m.probs(), m.probs() + T * 7);
  x[4] = (x[4] + 1) % 7; // changing position 4 may only change outputs 4 and 5
  m.forward(x.data(), nullptr, nullptr, 1, T);
  EXPECT_EQ(0, std::memcmp(p.data(), m.probs(), 4 * 7 * sizeof(float)));
  EXPECT_NE(0, std::memcmp(p.data() + 4 * 7, m.probs() + 4 * 7, 7 * sizeof(float)));
}

TEST(ModelTest, BlockedAttentionEqualsFullAttention) {
  // f32 runs even T through the blocked causal products, bf16 and odd T do
  // not; compare a blocked f32 run with one padded to an odd length, whose
  // first T outputs must agree (causality).
  GptConfig c = tiny(true);
  c.block_size = 9;
  Gpt m(c);
  randomise(m, 71);
  const int B = 2, T = 8;
  auto x = randint(size_t(B * (T + 1)), 7, 72);
  std::vector<int32_t> x8;
  for (int b = 0; b < B; ++b)
    x8.insert(x8.end(), x.begin() + b * (T + 1), x.begin() + b * (T + 1) + T);
  m.forward(x8.data(), nullptr, nullptr, B, T);
  std::vector<float> p8(m.probs(), m.probs() + B * T * 7);
  m.forward(x.data(), nullptr, nullptr, B, T + 1);
  for (int b = 0; b < B; ++b)
    EXPECT_TRUE(
        all_close(p8.data() + b * T * 7, m.probs() + b * (T + 1) * 7, size_t(T * 7), 1e-5, 1e-7))
        << "sequence " << b;
}

TEST(ModelTest, RejectsBadInputs) {
  Gpt m(tiny(false));
  std::vector<int32_t> x(12, 0), bad(12, 7);
  EXPECT_THROW(m.forward(bad.data(), nullptr, x.data(), 2, 6), std::out_of_range);
  EXPECT_THROW(m.forward(x.data(), nullptr, x.data(), 1, 7), std::invalid_argument);
  EXPECT_THROW(m.backward(nullptr), std::logic_error);
  GptConfig c = tiny(false);
  c.n_head = 3;
  EXPECT_THROW(Gpt{c}, std::invalid_argument);
}

// Central finite differences of the float loss against the analytic
// gradient. With parameters ~0.3 and eps = 3e-3 the truncation error is
// O(eps^2) and the float rounding of the loss (~1e-6) contributes
// ~1e-6 / 6e-3 ~ 2e-4 to the difference quotient, hence atol 1e-3 and rtol 3e-2
// on the coordinates with the largest gradients, which are ~1e-1.
class GradCheckTest : public ::testing::TestWithParam<bool> {};

TEST_P(GradCheckTest, WholeModelMatchesFiniteDifferences) {
  Gpt m(tiny(GetParam()));
  randomise(m, 21);
  const int B = 2, T = 6; // even T: the blocked causal attention path
  auto x = randint(size_t(B * T), 7, 22), y = randint(size_t(B * T), 7, 23);
  m.zero_grad();
  m.forward(x.data(), nullptr, y.data(), B, T);
  m.backward(nullptr);
  const std::vector<float> g(m.grads().data(), m.grads().data() + m.grads().size());
  auto loss_at = [&](size_t i, float delta) {
    const float keep = m.params()[i];
    m.params()[i] = keep + delta;
    const double l = m.forward(x.data(), nullptr, y.data(), B, T);
    m.params()[i] = keep;
    return l;
  };
  const float eps = 3e-3f;
  int checked = 0;
  for (const ParamSpec& s : m.specs()) {
    // The three largest-gradient coordinates of each tensor plus its first one.
    std::vector<size_t> idx(s.numel);
    std::iota(idx.begin(), idx.end(), s.offset);
    std::partial_sort(idx.begin(), idx.begin() + std::min<size_t>(3, idx.size()), idx.end(),
                      [&](size_t a, size_t b) { return std::fabs(g[a]) > std::fabs(g[b]); });
    idx.resize(std::min<size_t>(3, idx.size()));
    idx.push_back(s.offset);
    for (size_t i : idx) {
      const double fd = (loss_at(i, eps) - loss_at(i, -eps)) / (2.0 * eps);
      EXPECT_NEAR(g[i], fd, 1e-3 + 3e-2 * std::fabs(fd)) << s.name << " [" << i - s.offset << "]";
      ++checked;
    }
  }
  EXPECT_GE(checked, 4 * int(m.specs().size()) - 4);

  // Directional derivative along a random direction over all parameters.
  auto dir = randn(g.size(), 24);
  double gd = 0, dn = 0;
  for (size_t i = 0; i < g.size(); ++i)
    gd += double(g[i]) * dir[i], dn += double(dir[i]) * dir[i];
  const float h = float(1e-2 / std::sqrt(dn));
  const std::vector<float> p0(m.params().data(), m.params().data() + m.params().size());
  for (size_t i = 0; i < g.size(); ++i)
    m.params()[i] = p0[i] + h * dir[i];
  const double lp = m.forward(x.data(), nullptr, y.data(), B, T);
  for (size_t i = 0; i < g.size(); ++i)
    m.params()[i] = p0[i] - h * dir[i];
  const double lm = m.forward(x.data(), nullptr, y.data(), B, T);
  EXPECT_NEAR((lp - lm) / (2.0 * h), gd, 2e-2 * std::fabs(gd) + 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Bias, GradCheckTest, ::testing::Bool());

TEST(ModelTest, AccumulatedMicroBatchesEqualOneBigBatch) {
  GptConfig c = tiny(true);
  c.n_embd = 16, c.block_size = 8, c.vocab_size = 11;
  Gpt big(c), small(c);
  randomise(big, 31);
  std::memcpy(small.params().data(), big.params().data(), big.params().size() * 4);
  const int K = 3, B = 2, T = 8;
  auto x = randint(size_t(K * B * T), 11, 32), y = randint(size_t(K * B * T), 11, 33);
  big.zero_grad();
  const double lbig = big.forward(x.data(), nullptr, y.data(), K * B, T);
  big.backward(nullptr);
  small.zero_grad();
  double lsum = 0;
  for (int k = 0; k < K; ++k) {
    lsum += small.forward(x.data() + k * B * T, nullptr, y.data() + k * B * T, B, T);
    small.backward(nullptr, 1.f / K);
  }
  EXPECT_NEAR(lsum / K, lbig, 1e-6 * lbig);
  EXPECT_TRUE(all_close(small.grads().data(), big.grads().data(), big.grads().size(), 1e-4, 1e-6));
}

TEST(ModelTest, StagesComposeToTheWholeModel) {
  GptConfig c = tiny(true, 3);
  c.n_embd = 16, c.block_size = 8, c.vocab_size = 11;
  Gpt whole(c);
  Gpt s0(c, {0, 1, true, false}), s1(c, {1, 2, false, false}), s2(c, {2, 3, false, true});
  whole.init_weights(41);
  for (Gpt* s : {&s0, &s1, &s2})
    s->init_weights(41); // per-tensor streams: same values as the whole model's
  for (Gpt* s : {&s0, &s1, &s2})
    for (const ParamSpec& p : s->specs()) {
      const ParamSpec* w = whole.find(p.name);
      ASSERT_NE(w, nullptr) << p.name;
      ASSERT_EQ(0, std::memcmp(s->params().data() + p.offset, whole.params().data() + w->offset,
                               p.numel * 4))
          << p.name;
    }
  EXPECT_EQ(s0.specs().back().name, "transformer.h.0.mlp.c_proj.bias");
  EXPECT_EQ(s2.specs().front().name, "transformer.wte.weight"); // the tied head

  const int B = 3, T = 8;
  auto x = randint(size_t(B * T), 11, 42), y = randint(size_t(B * T), 11, 43);
  whole.zero_grad();
  const float lw = whole.forward(x.data(), nullptr, y.data(), B, T);
  whole.backward(nullptr);
  for (Gpt* s : {&s0, &s1, &s2})
    s->zero_grad();
  s0.forward(x.data(), nullptr, nullptr, B, T);
  s1.forward(nullptr, s0.output(), nullptr, B, T);
  const float ls = s2.forward(nullptr, s1.output(), y.data(), B, T);
  EXPECT_EQ(ls, lw);
  s2.backward(nullptr);
  s1.backward(s2.input_grad());
  s0.backward(s1.input_grad());
  for (Gpt* s : {&s0, &s1, &s2})
    for (const ParamSpec& p : s->specs()) {
      if (p.name == "transformer.wte.weight")
        continue;
      const ParamSpec* w = whole.find(p.name);
      EXPECT_EQ(0, std::memcmp(s->grads().data() + p.offset, whole.grads().data() + w->offset,
                               p.numel * 4))
          << p.name;
    }
  // The tied embedding: the first stage's (embedding) and the last stage's
  // (head) gradients sum to the whole model's, up to summation order.
  const ParamSpec* w = whole.find("transformer.wte.weight");
  std::vector<float> sum(w->numel);
  for (size_t i = 0; i < w->numel; ++i)
    sum[i] = s0.grads()[s0.find(w->name)->offset + i] + s2.grads()[s2.find(w->name)->offset + i];
  EXPECT_TRUE(all_close(sum.data(), whole.grads().data() + w->offset, w->numel, 1e-6, 1e-8));
  EXPECT_THROW(s1.forward(x.data(), nullptr, nullptr, B, T), std::invalid_argument);

  // A stage cut out of the whole model by name holds the same parameters.
  Gpt cut(c, {1, 3, false, true});
  EXPECT_EQ(copy_parameters(cut, whole), cut.specs().size());
  const ParamSpec* h2 = cut.find("transformer.h.2.mlp.c_fc.weight");
  EXPECT_EQ(0, std::memcmp(cut.params().data() + h2->offset,
                           whole.params().data() + whole.find(h2->name)->offset, h2->numel * 4));
  GptConfig other = c;
  other.n_embd = 32;
  Gpt wrong(other);
  EXPECT_THROW(copy_parameters(wrong, whole), std::invalid_argument);
  EXPECT_THROW(Gpt(c, {2, 4, false, false}), std::invalid_argument);
}

// With and without biases (bf16 mode keeps the gradients that a bias
// gradient reads in f32).
class Bf16ModelTest : public ::testing::TestWithParam<bool> {
protected:
  GptConfig config() const {
    GptConfig c = GptConfig::builtin("baby");
    c.vocab_size = 65;
    c.bias = GetParam();
    return c;
  }
  // init_weights zeroes the biases: give them values that matter.
  static void init(Gpt& m, uint64_t seed) {
    m.init_weights(seed);
    Rng rng(seed + 1);
    for (const ParamSpec& s : m.specs())
      if (s.name.size() > 5 && s.name.compare(s.name.size() - 5, 5, ".bias") == 0)
        for (size_t i = 0; i < s.numel; ++i)
          m.params()[s.offset + i] = float(0.02 * rng.normal());
  }
};

TEST_P(Bf16ModelTest, Bf16TracksF32) {
  const GptConfig c = config();
  Gpt f(c), b(c, StageRange::whole(), Precision::bf16);
  init(f, 51);
  init(b, 51);
  const int B = 2, T = 64;
  auto x = randint(size_t(B * T), 65, 52), y = randint(size_t(B * T), 65, 53);
  f.zero_grad();
  b.zero_grad();
  const float lf = f.forward(x.data(), nullptr, y.data(), B, T);
  const float lb = b.forward(x.data(), nullptr, y.data(), B, T);
  EXPECT_NEAR(lb, lf, 5e-3);
  f.backward(nullptr);
  b.backward(nullptr);
  double dot = 0, nf = 0, nb = 0;
  for (size_t i = 0; i < f.grads().size(); ++i) {
    dot += double(f.grads()[i]) * b.grads()[i];
    nf += double(f.grads()[i]) * f.grads()[i];
    nb += double(b.grads()[i]) * b.grads()[i];
  }
  EXPECT_GT(dot / std::sqrt(nf * nb), 0.99); // cosine similarity of the gradients

  // bf16 copies of the weights are cached per forward: a change to the
  // parameters must be seen by the next forward.
  for (size_t i = 0; i < b.params().size(); ++i)
    b.params()[i] -= 0.01f * b.grads()[i];
  Gpt fresh(c, StageRange::whole(), Precision::bf16);
  std::memcpy(fresh.params().data(), b.params().data(), b.params().size() * 4);
  EXPECT_EQ(b.forward(x.data(), nullptr, y.data(), B, T),
            fresh.forward(x.data(), nullptr, y.data(), B, T));
}

// bf16 roundings are reused (parameters and activations once per forward,
// a gradient for the two matmuls that read it): the losses and gradients
// must be bit-identical to rounding every operand at every use, over two
// steps with the parameters changed in between.
TEST_P(Bf16ModelTest, Bf16ReuseChangesNoResult) {
  GptConfig c = config();
  c.n_layer = 2;
  Gpt reused(c, StageRange::whole(), Precision::bf16),
      plain(c, StageRange::whole(), Precision::bf16);
  init(reused, 61);
  init(plain, 61);
  plain.engine().set_bf16_reuse(false);
  const int B = 3, T = 32;
  for (int step = 0; step < 2; ++step) {
    auto x = randint(size_t(B * T), 65, 62 + step), y = randint(size_t(B * T), 65, 64 + step);
    reused.zero_grad();
    plain.zero_grad();
    EXPECT_EQ(reused.forward(x.data(), nullptr, y.data(), B, T),
              plain.forward(x.data(), nullptr, y.data(), B, T));
    reused.backward(nullptr);
    plain.backward(nullptr);
    ASSERT_EQ(reused.grads().size(), plain.grads().size());
    size_t differ = 0;
    for (size_t i = 0; i < reused.grads().size(); ++i)
      differ += reused.grads()[i] != plain.grads()[i] ? 1 : 0;
    EXPECT_EQ(differ, 0u) << "step " << step;
    for (size_t i = 0; i < reused.params().size(); ++i) {
      reused.params()[i] -= 0.05f * reused.grads()[i];
      plain.params()[i] -= 0.05f * plain.grads()[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Bias, Bf16ModelTest, ::testing::Bool());

} // namespace
} // namespace orbitrain::compute

namespace orbitrain::compute {
namespace {

// The hooks tell the truth: forward asks for growing prefixes of the
// parameters before it reads them (parameters past the prefix may still be
// garbage), and backward reports suffixes of the gradients that no later
// work changes.
TEST(ModelTest, HooksReportParameterPrefixesAndFinalGradientSuffixes) {
  GptConfig c = tiny(true, 3);
  Gpt ref(c);
  randomise(ref, 71);
  const int B = 2, T = 5;
  auto x = randint(size_t(B * T), 7, 72), y = randint(size_t(B * T), 7, 73);
  ref.zero_grad();
  const float want_loss = ref.forward(x.data(), nullptr, y.data(), B, T);
  ref.backward(nullptr, 1.f);

  Gpt m(c);
  const size_t n = m.params().size();
  std::fill(m.params().data(), m.params().data() + n, std::nanf(""));
  std::vector<size_t> needed, final_from;
  std::vector<std::vector<float>> snapshots;
  m.set_hooks({[&](size_t end) {
                 EXPECT_TRUE(needed.empty() || end >= needed.back());
                 needed.push_back(end);
                 // Parameters arrive only now, up to `end`.
                 std::copy(ref.params().data(), ref.params().data() + end, m.params().data());
               },
               [&](size_t begin) {
                 EXPECT_TRUE(final_from.empty() || begin <= final_from.back());
                 final_from.push_back(begin);
                 snapshots.emplace_back(m.grads().data() + begin, m.grads().data() + n);
               }});
  m.zero_grad();
  EXPECT_EQ(m.forward(x.data(), nullptr, y.data(), B, T), want_loss);
  m.backward(nullptr, 1.f);
  ASSERT_FALSE(needed.empty());
  EXPECT_EQ(needed.back(), n);
  EXPECT_GE(needed.size(), 5u); // embeddings, 3 blocks, head
  ASSERT_GE(final_from.size(), 5u);
  EXPECT_EQ(final_from.back(), 0u);
  EXPECT_EQ(final_from, m.gradient_boundaries());
  EXPECT_GT(final_from.front(), 0u);
  for (size_t i = 0; i < final_from.size(); ++i)
    EXPECT_EQ(0, std::memcmp(snapshots[i].data(), ref.grads().data() + final_from[i],
                             snapshots[i].size() * sizeof(float)))
        << "gradients reported final from " << final_from[i] << " changed afterwards";
}

} // namespace
} // namespace orbitrain::compute
