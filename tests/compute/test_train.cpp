// Optimizer, schedule, batching, tokenizer and the training loop: AdamW
// against PyTorch's update written out by hand, nanoGPT's learning-rate
// schedule, sequential batches at the documented positions, and a short
// training run that must lower the loss and be reproducible.
#include "compute/optimizer.hpp"
#include "compute/tokenizer.hpp"
#include "compute/trainer.hpp"
#include "tests/compute/test_util.hpp"

#include <cmath>
#include <gtest/gtest.h>
#include <omp.h>
#include <string>
#include <vector>

namespace orbitrain::compute {
namespace {

TEST(AdamWTest, MatchesTorchUpdate) {
  std::vector<ParamSpec> specs(2);
  specs[0] = {"w", {2, 2}, 0, 4, true};
  specs[1] = {"b", {2}, 4, 2, false};
  AdamWConfig cfg{0.9f, 0.99f, 1e-8f, 0.1f};
  AdamW opt(specs, cfg);
  std::vector<float> p{0.5f, -1.f, 2.f, 0.f, 1.f, -2.f}, p_ref(p.begin(), p.end());
  std::vector<double> m(6, 0), v(6, 0);
  const float lr = 1e-2f;
  for (int t = 1; t <= 3; ++t) {
    std::vector<float> g{0.1f * t, -0.2f, 0.3f, 0.05f * t, -1.f, 0.4f};
    opt.step(p.data(), g.data(), lr);
    for (size_t i = 0; i < 6; ++i) {
      // torch.optim.AdamW, single tensor path
      if (i < 4)
        p_ref[i] *= 1.0 - lr * 0.1;
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.99 * v[i] + 0.01 * double(g[i]) * g[i];
      const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.99, t);
      const double denom = std::sqrt(v[i]) / std::sqrt(bc2) + 1e-8;
      p_ref[i] = float(p_ref[i] - lr / bc1 * m[i] / denom);
    }
  }
  EXPECT_TRUE(testing::all_close(p, p_ref, 1e-5, 1e-6));
  EXPECT_EQ(opt.steps_taken(), 3);
}

TEST(ScheduleTest, WarmupThenCosineToMin) {
  LrSchedule s{1e-3f, 1e-4f, 100, 2000};
  EXPECT_FLOAT_EQ(s.at(0), 1e-3f * 1 / 101);
  EXPECT_FLOAT_EQ(s.at(99), 1e-3f * 100 / 101);
  EXPECT_FLOAT_EQ(s.at(100), 1e-3f);
  EXPECT_NEAR(s.at(1050), 5.5e-4f, 1e-7);
  EXPECT_FLOAT_EQ(s.at(2000), 1e-4f);
  EXPECT_FLOAT_EQ(s.at(5000), 1e-4f);
}

TEST(ClipTest, ScalesToMaxNorm) {
  std::vector<float> g{3.f, 4.f};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), 2, 1.0), 5.0);
  EXPECT_NEAR(grad_norm(g.data(), 2), 1.0, 1e-6);
  std::vector<float> h{0.3f, 0.4f};
  clip_grad_norm(h.data(), 2, 1.0);
  EXPECT_EQ(h[0], 0.3f); // below the limit: untouched
  // Large enough for the threaded path.
  auto big = testing::randn(200003, 7);
  double sq = 0;
  for (float x : big)
    sq += double(x) * x;
  EXPECT_NEAR(grad_norm(big.data(), big.size()), std::sqrt(sq), 1e-9 * std::sqrt(sq));
  clip_grad_norm(big.data(), big.size(), 2.0);
  EXPECT_NEAR(grad_norm(big.data(), big.size()), 2.0, 1e-5);
}

TEST(ClipTest, ScaleInsideAdamWEqualsClippingFirst) {
  // The trainer and the parameter server clip through AdamW's grad_scale;
  // it must give the very floats clip_grad_norm followed by a step gives.
  const std::vector<ParamSpec> specs{{"w", {3000}, 0, 3000, true}, {"b", {77}, 3000, 77, false}};
  auto g = testing::randn(3077, 11);
  for (float& x : g)
    x *= 3.f; // norm ~166: clipped to 1
  auto p1 = testing::randn(3077, 12), p2 = p1;
  AdamW a1(specs, {}), a2(specs, {});
  auto g1 = g;
  for (int step = 0; step < 3; ++step) {
    g1 = g;
    clip_grad_norm(g1.data(), g1.size(), 1.0);
    a1.step(p1.data(), g1.data(), 1e-2f);
    const double norm = grad_norm(g.data(), g.size());
    ASSERT_LT(clip_scale(norm, 1.0), 1.f);
    a2.step(p2.data(), g.data(), 1e-2f, nullptr, clip_scale(norm, 1.0));
  }
  EXPECT_EQ(0, std::memcmp(p1.data(), p2.data(), p1.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a1.m().data(), a2.m().data(), p1.size() * sizeof(float)));
  EXPECT_EQ(clip_scale(0.5, 1.0), 1.f);
  EXPECT_EQ(clip_scale(50.0, 0.0), 1.f);
}

TEST(TokenizerTest, SortedDistinctBytesRoundTrip) {
  const std::string text = "hello, world\n\xff";
  Tokenizer t = Tokenizer::from_text(text);
  EXPECT_EQ(t.size(), 11);
  EXPECT_EQ(t.vocab().front(), '\n');
  EXPECT_EQ(t.vocab().back(), 0xff);
  const auto toks = t.encode(text);
  EXPECT_EQ(toks[0], 5); // sorted: \n space , d e h l o r w \xff
  EXPECT_EQ(t.decode(toks), text);
  EXPECT_EQ(Tokenizer::from_json(t.to_json()), t);
  EXPECT_THROW((void)t.encode("hello!"), std::invalid_argument);
  EXPECT_THROW(Tokenizer::from_json("[1, 300]"), std::invalid_argument);
  EXPECT_THROW(Tokenizer::from_json("nope"), std::invalid_argument);
}

TEST(BatchTest, SequentialWindowsStartAtDocumentedPositions) {
  std::vector<int32_t> data(100);
  for (int i = 0; i < 100; ++i)
    data[size_t(i)] = i;
  std::vector<int32_t> x, y;
  Rng rng(1);
  const int B = 3, T = 8;
  get_batch(x, y, data, Sampler::sequential, 2, B, T, rng);
  for (int b = 0; b < B; ++b) {
    EXPECT_EQ(x[size_t(b * T)], (2 * B + b) * T) << b;
    EXPECT_EQ(y[size_t(b * T)], (2 * B + b) * T + 1);
    EXPECT_EQ(x[size_t(b * T + T - 1)] + 1, y[size_t(b * T + T - 1)]);
  }
  // (100-1)/8 = 12 windows; batch 4 window 12 wraps to window 0.
  get_batch(x, y, data, Sampler::sequential, 4, B, T, rng);
  EXPECT_EQ(x[0], 0);
  get_batch(x, y, data, Sampler::random, 0, B, T, rng);
  for (int b = 0; b < B; ++b)
    EXPECT_LE(x[size_t(b * T)], 100 - T - 1);
  EXPECT_THROW(get_batch(x, y, std::vector<int32_t>(8), Sampler::random, 0, 1, 8, rng),
               std::invalid_argument);
}

TEST(SplitTest, NinetyTen) {
  std::vector<int32_t> d(1000, 1);
  d[900] = 2;
  Split s = split_90_10(d);
  EXPECT_EQ(s.train.size(), 900u);
  EXPECT_EQ(s.val.size(), 100u);
  EXPECT_EQ(s.val.front(), 2);
}

std::string toy_text() {
  std::string s;
  for (int i = 0; i < 400; ++i)
    s += "the cat sat on the mat. ";
  return s;
}

TEST(TrainTest, LossFallsAndRunsAreReproducible) {
  // A tiny model: one thread (parallel regions would cost more than the work,
  // and much more on a busy machine). Threaded paths are covered by test_ops.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::string text = toy_text();
  Tokenizer tok = Tokenizer::from_text(text);
  GptConfig c;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 32, c.block_size = 32, c.vocab_size = tok.size();
  const Split split = split_90_10(tok.encode(text));
  TrainOptions o;
  o.steps = 150, o.batch = 4, o.accum = 2, o.eval_every = 50, o.eval_batches = 2;
  o.schedule = {3e-3f, 3e-4f, 10, 150};
  std::vector<double> first_losses, second_losses;
  Gpt a(c), b(c);
  a.init_weights(3);
  b.init_weights(3);
  StepReport ra = train(a, split, o, [&](const StepReport& r) { first_losses.push_back(r.loss); });
  StepReport rb = train(b, split, o, [&](const StepReport& r) { second_losses.push_back(r.loss); });
  ASSERT_EQ(first_losses.size(), 150u);
  EXPECT_LT(first_losses.back(), 0.2 * first_losses.front());
  ASSERT_TRUE(ra.val_loss.has_value());
  EXPECT_LT(*ra.val_loss, 0.3);
  EXPECT_EQ(first_losses, second_losses);
  EXPECT_EQ(ra.val_loss, rb.val_loss);
  EXPECT_EQ(0, std::memcmp(a.params().data(), b.params().data(), a.params().size() * 4));

  // The model has learnt the sentence: greedy decoding continues it.
  const auto out = generate(a, tok.encode("the cat sat on the mat. the c"), 6, 0.f, 0, 1);
  EXPECT_EQ(tok.decode(out), "the cat sat on the mat. the cat sat");
  // Sampling is seeded.
  EXPECT_EQ(generate(a, tok.encode("the"), 20, 1.f, 5, 9),
            generate(a, tok.encode("the"), 20, 1.f, 5, 9));
  omp_set_num_threads(threads);
}

// The contract the parameter server relies on: one training step with K
// accumulated micro-batches equals summing K separately computed micro-batch
// gradients in order (as workers + server do) and applying AdamW, bit for bit.
TEST(TrainTest, AccumulationMatchesSeparateWorkersBitForBit) {
  const std::string text = toy_text();
  Tokenizer tok = Tokenizer::from_text(text);
  GptConfig c;
  c.n_layer = 1, c.n_head = 2, c.n_embd = 16, c.block_size = 16, c.vocab_size = tok.size();
  const Split split = split_90_10(tok.encode(text));
  TrainOptions o;
  o.steps = 1, o.batch = 2, o.accum = 3, o.eval_every = 0, o.eval_batches = 1;
  o.sampler = Sampler::sequential;
  Gpt trained(c), worker(c), server(c);
  trained.init_weights(5);
  worker.init_weights(5);
  server.init_weights(5);
  train(trained, split, o, nullptr);

  Buffer sum(server.grads().size());
  std::vector<int32_t> x, y;
  Rng unused(0);
  for (int k = 0; k < o.accum; ++k) { // "worker k"
    get_batch(x, y, split.train, Sampler::sequential, k, o.batch, c.block_size, unused);
    worker.zero_grad();
    worker.forward(x.data(), nullptr, y.data(), o.batch, c.block_size);
    worker.backward(nullptr, 1.f / float(o.accum));
    accumulate_gradients(sum.data(), worker.grads().data(), sum.size());
  }
  clip_grad_norm(sum.data(), sum.size(), o.grad_clip);
  AdamW opt(server.specs(), o.adamw);
  opt.step(server.params().data(), sum.data(), o.schedule.at(0));
  EXPECT_EQ(0, std::memcmp(server.params().data(), trained.params().data(),
                           server.params().size() * sizeof(float)));
}

} // namespace
} // namespace orbitrain::compute
