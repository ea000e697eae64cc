// OrderedSum (actors/tensor_exchange.hpp): a sync step's gradient sum built
// frame by frame as frames arrive must be bit-identical to summing each
// micro-batch's whole set in micro-batch order afterwards, and must say so
// only when the tasks it summed are the ones finally accepted.
#include "actors/tensor_exchange.hpp"
#include "compute/trainer.hpp"

#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace orbitrain {
namespace {

constexpr size_t kFloats = 1000;
constexpr size_t kFrame = 300; // frames [0,300) [300,600) [600,900) [900,1000)
constexpr uint32_t kFrames = 4;

std::vector<float> gradient(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1e-3f);
  std::vector<float> g(kFloats);
  for (float& x : g)
    x = d(rng);
  return g;
}

// The reference: micro-batch 0 copied, then 1, 2, ... added, whole sets.
std::vector<float> ordered_sum(const std::vector<std::vector<float>>& mbs) {
  std::vector<float> sum = mbs[0];
  for (size_t k = 1; k < mbs.size(); ++k)
    compute::accumulate_gradients(sum.data(), mbs[k].data(), kFloats);
  return sum;
}

struct Arrival {
  uint64_t task;
  uint32_t mb, frame;
};

void offer(OrderedSum& s, std::vector<float>& sum, const std::vector<std::vector<float>>& data,
           const Arrival& a) {
  const size_t off = a.frame * kFrame, n = std::min(kFrame, kFloats - off);
  s.offer(sum.data(), a.task, a.mb, a.frame, kFrames, off, n, data[a.mb].data() + off);
}

TEST(OrderedSum, AnyArrivalOrderGivesTheMicroBatchOrderSum) {
  // One micro-batch (copied), two (summed in one pass), three (then added).
  for (uint32_t m = 1; m <= 3; ++m) {
    std::vector<std::vector<float>> mbs;
    std::vector<uint64_t> tasks;
    for (uint32_t k = 0; k < m; ++k) {
      mbs.push_back(gradient(k + 1));
      tasks.push_back(100 + k);
    }
    const auto want = ordered_sum(mbs);
    // Every micro-batch's frames arrive last-frame-first (as backward sends
    // them), interleaved across micro-batches in a shuffled order.
    std::vector<Arrival> arrivals;
    for (uint32_t k = 0; k < m; ++k)
      for (uint32_t f = kFrames; f-- > 0;)
        arrivals.push_back({100 + k, k, f});
    for (uint32_t seed = 0; seed < 20; ++seed) {
      std::shuffle(arrivals.begin(), arrivals.end(), std::mt19937(seed));
      OrderedSum s;
      s.reset(m);
      std::vector<float> sum(kFloats, 7.f); // stale contents must not matter
      for (const auto& a : arrivals)
        offer(s, sum, mbs, a);
      ASSERT_TRUE(s.complete(tasks)) << m;
      ASSERT_EQ(0, std::memcmp(sum.data(), want.data(), kFloats * sizeof(float)))
          << m << " micro-batches, seed " << seed;
    }
  }
}

TEST(OrderedSum, IncompleteUntilEveryFrameOfEveryMicroBatchIsIn) {
  const std::vector<std::vector<float>> mbs = {gradient(1), gradient(2)};
  OrderedSum s;
  s.reset(2);
  std::vector<float> sum(kFloats);
  for (uint32_t f = 0; f < kFrames; ++f)
    offer(s, sum, mbs, {1, 1, f}); // micro-batch 1 first: nothing summable yet
  EXPECT_FALSE(s.complete({0, 1}));
  for (uint32_t f = 0; f + 1 < kFrames; ++f)
    offer(s, sum, mbs, {0, 0, f});
  EXPECT_FALSE(s.complete({0, 1}));
  offer(s, sum, mbs, {0, 0, kFrames - 1});
  EXPECT_TRUE(s.complete({0, 1}));
}

TEST(OrderedSum, ASecondTaskForAMicroBatchIsNotSummedAndNotAccepted) {
  const std::vector<std::vector<float>> mbs = {gradient(1), gradient(2), gradient(9)};
  OrderedSum s;
  s.reset(2);
  std::vector<float> sum(kFloats);
  for (uint32_t f = 0; f < kFrames; ++f) {
    offer(s, sum, mbs, {10, 0, f});
    offer(s, sum, mbs, {11, 1, f});
    // Task 12, a re-assigned copy of micro-batch 1 with other floats.
    s.offer(sum.data(), 12, 1, f, kFrames, f * kFrame, std::min(kFrame, kFloats - f * kFrame),
            mbs[2].data() + f * kFrame);
  }
  EXPECT_TRUE(s.complete({10, 11}));
  EXPECT_FALSE(s.complete({10, 12})); // the caller sums the accepted ones itself
  const auto want = ordered_sum({mbs[0], mbs[1]});
  EXPECT_EQ(0, std::memcmp(sum.data(), want.data(), kFloats * sizeof(float)));
}

TEST(OrderedSum, DroppingASummedTaskOrMismatchedFramesAbandonsTheSum) {
  const std::vector<std::vector<float>> mbs = {gradient(1), gradient(2)};
  {
    OrderedSum s;
    s.reset(2);
    std::vector<float> sum(kFloats);
    offer(s, sum, mbs, {1, 0, 0});
    s.drop(1); // its frames go away (a failed result)
    for (uint32_t f = 0; f < kFrames; ++f)
      offer(s, sum, mbs, {2, 1, f});
    EXPECT_FALSE(s.complete({1, 2}));
  }
  {
    OrderedSum s;
    s.reset(2);
    std::vector<float> sum(kFloats);
    s.drop(5); // a task that was never summed changes nothing
    for (uint32_t f = 0; f < kFrames; ++f)
      offer(s, sum, mbs, {1, 0, f});
    // Micro-batch 1 cut differently: frame 0 one float shorter.
    s.offer(sum.data(), 2, 1, 0, kFrames, 0, kFrame - 1, mbs[1].data());
    for (uint32_t f = 1; f < kFrames; ++f)
      offer(s, sum, mbs, {2, 1, f});
    EXPECT_FALSE(s.complete({1, 2}));
  }
  {
    OrderedSum s;
    s.reset(1);
    std::vector<float> sum(kFloats);
    offer(s, sum, mbs, {1, 0, 0});
    offer(s, sum, mbs, {1, 0, 0}); // the same frame twice
    for (uint32_t f = 1; f < kFrames; ++f)
      offer(s, sum, mbs, {1, 0, f});
    EXPECT_FALSE(s.complete({1}));
  }
}

// ParamLanding keeps the received frames themselves and copies each range
// out once, into the model, as the compute thread asks for it.
msg::Bytes param_frame(const std::vector<float>& p, uint64_t version, size_t begin, size_t end) {
  msg::TensorFrame h;
  h.kind = msg::TensorKind::parameters;
  h.version = version;
  h.frame_index = static_cast<uint32_t>(begin / kFrame);
  h.frame_count = kFrames;
  return msg::encode_flat_frame("ps", "job", h, "parameters", p.size(), begin, p.data() + begin,
                                end - begin);
}

bool land(ParamLanding& l, msg::Bytes bytes) {
  auto kept = std::make_shared<const msg::Bytes>(std::move(bytes));
  auto v = msg::decode_flat_frame(kept->data(), kept->size());
  return v.ok() && l.land(*v, kept);
}

TEST(ParamLanding, TakesAnyPrefixAcrossFramesAndMovesOnWithTheVersion) {
  const auto p = gradient(5), q = gradient(6);
  ParamLanding l;
  for (size_t b = 0; b < kFloats; b += kFrame)
    ASSERT_TRUE(land(l, param_frame(p, 1, b, std::min(b + kFrame, kFloats))));
  std::vector<float> model(kFloats, -1.f);
  size_t copied = 0;
  for (size_t end : {size_t(10), size_t(299), size_t(301), size_t(650), kFloats})
    l.take(1, end, model.data(), copied);
  EXPECT_EQ(copied, kFloats);
  EXPECT_EQ(0, std::memcmp(model.data(), p.data(), kFloats * sizeof(float)));
  // Out of order: frame 2 before frame 1 of the next version is refused.
  ASSERT_TRUE(land(l, param_frame(q, 2, 0, kFrame)));
  EXPECT_FALSE(land(l, param_frame(q, 2, 2 * kFrame, 3 * kFrame)));
  // The old version is gone once a new one starts.
  size_t again = 0;
  EXPECT_THROW(l.take(1, 10, model.data(), again), std::runtime_error);
  copied = 0;
  l.take(2, kFrame, model.data(), copied);
  EXPECT_EQ(0, std::memcmp(model.data(), q.data(), kFrame * sizeof(float)));
}

} // namespace
} // namespace orbitrain
