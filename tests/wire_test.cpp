// orbitrain::wire through CAF's binary serializers (actors/wire_message.hpp):
// the bytes keep CAF's layout for a byte vector, come back identical, and a
// corrupt length is an error rather than an allocation of that size.
#include "actors/wire_message.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/sec.hpp>
#include <gtest/gtest.h>
#include <vector>

namespace orbitrain {
namespace {

msg::Bytes pattern(size_t n) {
  msg::Bytes b(n);
  for (size_t i = 0; i < n; ++i)
    b[i] = static_cast<uint8_t>(i * 131 + 7);
  return b;
}

std::vector<char> save(wire w) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  EXPECT_FALSE(sink(w));
  return buf;
}

TEST(WireCodec, SameLayoutAsCafByteVector) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{128}, size_t{70000}}) {
    const msg::Bytes b = pattern(n);
    std::vector<uint8_t> plain(b.begin(), b.end());
    std::vector<char> expected;
    caf::binary_serializer sink{nullptr, expected};
    ASSERT_FALSE(sink(plain));
    EXPECT_EQ(save(wire{b}), expected) << n << " bytes";
  }
}

TEST(WireCodec, RoundTripsFramesAndChunks) {
  for (size_t n : {size_t{0}, size_t{5}, (size_t{4} << 20) + 3}) {
    const msg::Bytes b = pattern(n);
    const auto buf = save(wire{b});
    wire back;
    back.bytes = pattern(17); // overwritten, not appended to
    caf::binary_deserializer source{nullptr, buf};
    ASSERT_FALSE(source(back)) << n;
    EXPECT_EQ(source.remaining(), 0u);
    EXPECT_TRUE(back.bytes == b) << n << " bytes";
  }
}

TEST(WireCodec, TruncatedInputIsAnError) {
  auto buf = save(wire{pattern(1000)});
  buf.resize(buf.size() - 10);
  wire back;
  caf::binary_deserializer source{nullptr, buf};
  EXPECT_TRUE(source(back));
}

TEST(WireCodec, ALengthOverTheMessageLimitIsRefusedBeforeAllocating) {
  // A sequence header claiming 2 GiB, followed by almost nothing.
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  size_t huge = size_t{1} << 31;
  ASSERT_FALSE(sink.begin_sequence(huge));
  buf.push_back('x');
  wire back;
  caf::binary_deserializer source{nullptr, buf};
  auto err = source(back);
  ASSERT_TRUE(err);
  EXPECT_EQ(err, caf::sec::invalid_argument);
  EXPECT_TRUE(back.bytes.empty());
}

} // namespace
} // namespace orbitrain
