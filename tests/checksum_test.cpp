// CRC32C (schemas/crc32c.hpp) against published check values and against its
// portable twin on every length and alignment; ByteSet (core/byte_set.hpp)
// against a plain per-byte set on texts, binary data and late newcomers.
#include "core/byte_set.hpp"
#include "schemas/crc32c.hpp"

#include <gtest/gtest.h>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace orbitrain;

namespace {

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v)
    b = static_cast<uint8_t>(rng());
  return v;
}

const uint8_t* u8(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

} // namespace

TEST(Crc32c, PublishedCheckValues) {
  // The CRC catalogue's check value for CRC-32C, and RFC 3720's (iSCSI)
  // examples B.4: 32 zero bytes, 32 0xff bytes, 32 ascending bytes.
  const std::string check = "123456789";
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), up(32);
  for (size_t i = 0; i < up.size(); ++i)
    up[i] = static_cast<uint8_t>(i);
  for (auto f : {&crc32c, &crc32c_portable}) {
    EXPECT_EQ(f(u8(check), check.size(), 0), 0xE3069283u);
    EXPECT_EQ(f(zeros.data(), zeros.size(), 0), 0x8A9136AAu);
    EXPECT_EQ(f(ones.data(), ones.size(), 0), 0x62A8AB43u);
    EXPECT_EQ(f(up.data(), up.size(), 0), 0x46DD794Eu);
    EXPECT_EQ(f(nullptr, 0, 0), 0u);
  }
}

TEST(Crc32c, EveryLengthAndAlignmentAgreesWithThePortableCode) {
  const auto data = random_bytes(4096 + 64, 11);
  for (size_t offset = 0; offset < 9; ++offset)
    for (size_t n = 0; n <= 300; ++n)
      ASSERT_EQ(crc32c(data.data() + offset, n), crc32c_portable(data.data() + offset, n))
          << n << " bytes at offset " << offset;
  // Around the three-stream spans (3 x 256 and 3 x 8192 bytes).
  const auto spans = random_bytes(3 * 8192 * 2 + 3 * 256 * 2 + 64, 15);
  for (size_t n : {767, 768, 769, 1536, 1543, 24575, 24576, 24577, 25344, 25351, 49152 + 768 + 7})
    for (size_t offset : {size_t{0}, size_t{5}})
      ASSERT_EQ(crc32c(spans.data() + offset, n), crc32c_portable(spans.data() + offset, n))
          << n << " bytes at offset " << offset;
  const auto big = random_bytes(size_t{1} << 20, 12);
  EXPECT_EQ(crc32c(big.data(), big.size()), crc32c_portable(big.data(), big.size()));
}

TEST(Crc32c, ContinuesAcrossPieces) {
  const auto data = random_bytes(10000, 13);
  const uint32_t whole = crc32c(data.data(), data.size());
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, size_t{4096}, size_t{9999}, size_t{10000}})
    EXPECT_EQ(crc32c(data.data() + cut, data.size() - cut, crc32c(data.data(), cut)), whole)
        << "cut at " << cut;
}

TEST(Crc32c, EveryOneBitChangeIsDetected) {
  auto data = random_bytes(4096, 14);
  const uint32_t good = crc32c(data.data(), data.size());
  for (size_t bit = 0; bit < data.size() * 8; bit += 37) {
    data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    ASSERT_NE(crc32c(data.data(), data.size()), good) << "bit " << bit;
    data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
}

namespace {

std::vector<uint8_t> plain_set(const std::vector<uint8_t>& data) {
  std::set<uint8_t> s(data.begin(), data.end());
  return {s.begin(), s.end()};
}

std::vector<uint8_t> byte_set(const std::vector<uint8_t>& data, size_t piece) {
  ByteSet s;
  for (size_t at = 0; at < data.size(); at += piece)
    s.add(data.data() + at, std::min(piece, data.size() - at));
  return s.values();
}

} // namespace

TEST(ByteSet, TextAndBinaryGiveTheirDistinctBytes) {
  std::mt19937_64 rng(21);
  std::vector<uint8_t> text(200000);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz .,;:!?\nABCDE";
  for (auto& b : text)
    b = static_cast<uint8_t>(alphabet[rng() % alphabet.size()]);
  auto binary = random_bytes(100000, 22);
  for (const std::vector<uint8_t>* data : {&text, &binary})
    for (size_t piece : {size_t{1} << 20, size_t{4096}, size_t{1000}, size_t{31}, size_t{1}})
      EXPECT_EQ(byte_set(*data, piece), plain_set(*data)) << "pieces of " << piece;
  EXPECT_TRUE(ByteSet().values().empty());
}

TEST(ByteSet, ByteSeenOnceAnywhereIsFound) {
  // Long runs of a small alphabet with one newcomer each: at the start, in
  // the middle of a 32-byte block, in the unaligned tail, above 0x7f.
  for (size_t n : {size_t{100000}, size_t{100031}})
    for (size_t at : {size_t{0}, size_t{17}, size_t{50000}, n - 1})
      for (uint8_t odd : {uint8_t{0}, uint8_t{'~'}, uint8_t{0x80}, uint8_t{0xff}}) {
        std::vector<uint8_t> data(n);
        for (size_t i = 0; i < n; ++i)
          data[i] = static_cast<uint8_t>('a' + i % 3);
        data[at] = odd;
        EXPECT_EQ(byte_set(data, n), plain_set(data))
            << "byte " << int(odd) << " at " << at << " of " << n;
      }
}
