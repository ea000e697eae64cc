// The satellite store and placement: chunks verified on every read (a
// flipped byte is reported corrupt, never returned), manifests round-trip,
// checkpoints replace each other atomically, the hash ring is balanced and
// moves about 1/N of the chunks when one of N satellites joins or leaves.
#include "schemas/codec.hpp"
#include "storage/hash_ring.hpp"
#include "storage/sha256.hpp"
#include "storage/store.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <map>
#include <set>

using namespace orbitrain;
using orbitrain::testing::slurp;
using TempDir = orbitrain::testing::TempDir;

namespace {

std::vector<uint8_t> bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>((i * 131) ^ seed);
  return v;
}

Sha256 key(const std::vector<uint8_t>& v) {
  return sha256(v.data(), v.size());
}

std::unique_ptr<Store> open_store(const std::string& dir) {
  auto s = Store::open(dir);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return std::move(*s);
}

} // namespace

TEST(Sha256, KnownVector) {
  const std::string abc = "abc";
  EXPECT_EQ(to_hex(sha256(reinterpret_cast<const uint8_t*>(abc.data()), 3)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Stream s;
  s.update(reinterpret_cast<const uint8_t*>("a"), 1);
  s.update(reinterpret_cast<const uint8_t*>("bc"), 2);
  EXPECT_EQ(to_hex(s.finish()), to_hex(sha256(reinterpret_cast<const uint8_t*>(abc.data()), 3)));
}

TEST(Store, PutGetVerify) {
  TempDir dir;
  auto store = open_store(dir.path);
  auto a = bytes(1 << 20, 1);
  auto b = bytes(100, 2);
  auto r = store->put_chunk(key(a), a.data(), a.size());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(*r);
  auto again = store->put_chunk(key(a), a.data(), a.size());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again); // already held: nothing written
  ASSERT_TRUE(store->put_chunk(key(b), b.data(), b.size()).ok());
  auto got = store->get_chunk(key(a));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, a);
  EXPECT_TRUE(*store->has_chunk(key(b), false));
  EXPECT_TRUE(*store->has_chunk(key(b), true));
  std::vector<uint8_t> seen;
  ASSERT_TRUE(
      store->read_chunk(key(b), [&](const uint8_t* p, size_t n) { seen.assign(p, p + n); }).ok());
  EXPECT_EQ(seen, b);
  EXPECT_EQ(store->read_chunk(key(bytes(5, 9)), [](const uint8_t*, size_t) {}).error().code,
            Errc::not_found);
  auto missing = store->get_chunk(key(bytes(5, 9)));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  auto list = store->list_chunks();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  uint64_t total = 0;
  for (const auto& c : *list)
    total += c.size;
  EXPECT_EQ(total, a.size() + b.size());
}

TEST(Store, RefusesBytesThatDoNotMatchTheirKey) {
  TempDir dir;
  auto store = open_store(dir.path);
  auto a = bytes(1000, 1);
  auto k = key(a);
  a[10] ^= 1; // as if a transfer was cut or damaged
  auto r = store->put_chunk(k, a.data(), a.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::corrupt);
  EXPECT_FALSE(*store->has_chunk(k, false));
}

TEST(Store, VouchedKeyIsNotHashedOnPutButEveryReadChecksIt) {
  // KeyCheck::vouched stores what it is given (the sender hashed it, the
  // codec checked its CRC32C); bytes that do not match the key are then
  // reported as corrupt by every read and never handed out.
  TempDir dir;
  auto store = open_store(dir.path);
  auto a = bytes(3000, 5);
  auto b = bytes(3000, 6);
  ASSERT_TRUE(*store->put_chunk(key(a), a.data(), a.size(), Store::KeyCheck::vouched));
  EXPECT_EQ(*store->get_chunk(key(a)), a);
  const auto wrong = key(b);
  ASSERT_TRUE(*store->put_chunk(wrong, a.data(), a.size(), Store::KeyCheck::vouched));
  auto got = store->get_chunk(wrong);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::corrupt);
  bool called = false;
  EXPECT_FALSE(store->read_chunk(wrong, [&](const uint8_t*, size_t) { called = true; }).ok());
  EXPECT_FALSE(called);
  // The default check refuses the same put outright.
  auto refused = store->put_chunk(key(b), a.data(), a.size());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::corrupt);
}

TEST(Store, CorruptionDetectedOnEveryRead) {
  TempDir dir;
  auto store = open_store(dir.path);
  auto a = bytes(4096, 3);
  auto k = key(a);
  ASSERT_TRUE(store->put_chunk(k, a.data(), a.size()).ok());
  // Flip one byte of the stored value through the raw interface.
  auto raw = store->raw_chunk(k);
  ASSERT_TRUE(raw.ok());
  (*raw)[2000] ^= 0x40;
  ASSERT_TRUE(store->raw_put_chunk(k, *raw).ok());
  auto got = store->get_chunk(k);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::corrupt);
  EXPECT_NE(got.error().message.find(short_hex(k)), std::string::npos);
  bool called = false;
  auto read = store->read_chunk(k, [&](const uint8_t*, size_t) { called = true; });
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, Errc::corrupt);
  EXPECT_FALSE(called) << "corrupt bytes are never handed out";
  // The index still lists it; a verifying query drops it.
  EXPECT_TRUE(*store->has_chunk(k, false));
  bool dropped = false;
  EXPECT_FALSE(*store->has_chunk(k, true, &dropped));
  EXPECT_TRUE(dropped);
  EXPECT_FALSE(*store->has_chunk(k, false));
  // A good copy can be stored again.
  EXPECT_TRUE(*store->put_chunk(k, a.data(), a.size()));
  EXPECT_EQ(*store->get_chunk(k), a);
}

TEST(Store, SurvivesReopen) {
  TempDir dir;
  auto a = bytes(5000, 4);
  {
    auto store = open_store(dir.path);
    ASSERT_TRUE(store->put_chunk(key(a), a.data(), a.size()).ok());
    ASSERT_TRUE(store->put_meta("k", "v").ok());
  }
  auto store = open_store(dir.path);
  EXPECT_EQ(*store->get_chunk(key(a)), a);
  EXPECT_EQ(*store->get_meta("k"), "v");
  // A second opener of the same directory is refused, with the path.
  auto twin = Store::open(dir.path);
  ASSERT_FALSE(twin.ok());
  EXPECT_NE(twin.error().message.find(dir.path), std::string::npos);
}

TEST(Store, ManifestRoundTrip) {
  TempDir dir;
  auto store = open_store(dir.path);
  msg::DatasetManifest m;
  m.name = "shakespeare";
  for (uint8_t i = 0; i < 5; ++i) {
    auto c = bytes(100 + i, i);
    m.chunk_hashes.push_back(key(c));
    m.chunk_sizes.push_back(c.size());
    m.total_bytes += c.size();
  }
  m.sha256 = key(bytes(7, 7));
  m.vocabulary = {'\n', ' ', 'a', 'b'};
  m.created_at_ms = 1700000000000;
  m.chunk_size = 1 << 20;
  m.replicas = 2;
  ASSERT_TRUE(store->put_manifest(m).ok());
  auto back = store->get_manifest("shakespeare");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == m);
  auto all = store->list_manifests();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(store->get_manifest("nope").error().code, Errc::not_found);
  ASSERT_TRUE(store->delete_manifest("shakespeare").ok());
  EXPECT_TRUE(store->list_manifests()->empty());
}

TEST(Store, ManifestDecoderRejectsInconsistentSizes) {
  msg::DatasetManifest m;
  m.name = "x";
  m.chunk_hashes.resize(2);
  m.chunk_sizes = {1, 2};
  m.total_bytes = 5; // should be 3
  auto bytes = msg::encode_manifest(m);
  auto r = msg::decode_manifest(bytes.data(), bytes.size());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("totalBytes"), std::string::npos);
}

TEST(Store, CheckpointReplacesAtomically) {
  TempDir dir;
  auto store = open_store(dir.path);
  EXPECT_EQ(store->latest_checkpoint("job").error().code, Errc::not_found);
  auto s1 = bytes(40 << 20, 1); // three parts
  ASSERT_TRUE(store->put_checkpoint("job", 10, s1).ok());
  auto c1 = store->latest_checkpoint("job");
  ASSERT_TRUE(c1.ok()) << c1.error().message;
  EXPECT_EQ(c1->step, 10u);
  EXPECT_EQ(c1->state, s1);
  auto s2 = bytes(1000, 2);
  ASSERT_TRUE(store->put_checkpoint("job", 20, s2).ok());
  auto c2 = store->latest_checkpoint("job");
  EXPECT_EQ(c2->step, 20u);
  EXPECT_EQ(c2->state, s2);
  // Another job is independent.
  ASSERT_TRUE(store->put_checkpoint("job2", 1, s1).ok());
  EXPECT_EQ(store->latest_checkpoint("job")->state, s2);
  EXPECT_EQ(store->latest_checkpoint("job2")->state, s1);
}

TEST(HashRing, OwnersAreDistinctAndDeterministic) {
  HashRing ring({"a", "b", "c", "d"});
  for (int i = 0; i < 100; ++i) {
    auto k = key(bytes(10, static_cast<uint8_t>(i)));
    auto o = ring.owners(k, 2);
    ASSERT_EQ(o.size(), 2u);
    EXPECT_NE(o[0], o[1]);
    EXPECT_EQ(o, HashRing({"a", "b", "c", "d"}).owners(k, 2));
    auto all = ring.owners(k, 9);
    EXPECT_EQ(all.size(), 4u);
    // Skipping a satellite takes the next one on the ring.
    auto skip = ring.owners(k, 2, [&](const std::string& s) { return s != o[0]; });
    ASSERT_EQ(skip.size(), 2u);
    EXPECT_EQ(skip[0], o[1]);
  }
}

namespace {

std::vector<Sha256> many_keys(int n) {
  std::vector<Sha256> keys;
  for (int i = 0; i < n; ++i) {
    std::string s = "chunk-" + std::to_string(i);
    keys.push_back(sha256(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }
  return keys;
}

} // namespace

TEST(HashRing, BalancedAcrossSatellites) {
  std::vector<std::string> sats;
  for (int i = 0; i < 8; ++i)
    sats.push_back("sat-" + std::to_string(i));
  HashRing ring(sats);
  std::map<std::string, int> primary;
  auto keys = many_keys(40000);
  for (const auto& k : keys)
    ++primary[ring.owners(k, 1)[0]];
  const double fair = 40000.0 / 8;
  for (const auto& [s, n] : primary) {
    EXPECT_GT(n, fair * 0.8) << s;
    EXPECT_LT(n, fair * 1.2) << s;
  }
}

TEST(HashRing, AddingOrRemovingOneOfNMovesAboutOneNth) {
  for (int n : {4, 8, 16}) {
    std::vector<std::string> sats;
    for (int i = 0; i < n; ++i)
      sats.push_back("sat-" + std::to_string(i));
    HashRing before(sats);
    auto grown = sats;
    grown.push_back("sat-new");
    HashRing after_add(grown);
    auto shrunk = sats;
    shrunk.erase(shrunk.begin() + n / 2);
    HashRing after_remove(shrunk);
    auto keys = many_keys(20000);
    int moved_add = 0, moved_remove = 0, replica_moves = 0;
    for (const auto& k : keys) {
      auto o = before.owners(k, 2);
      if (after_add.owners(k, 1)[0] != o[0])
        ++moved_add;
      if (after_remove.owners(k, 1)[0] != o[0])
        ++moved_remove;
      auto a = after_add.owners(k, 2);
      for (const auto& s : a)
        if (std::find(o.begin(), o.end(), s) == o.end())
          ++replica_moves;
    }
    const double add_frac = moved_add / 20000.0;
    const double remove_frac = moved_remove / 20000.0;
    // Ideal: 1/(n+1) of the keys move to the newcomer, 1/n leave the removed one.
    EXPECT_NEAR(add_frac, 1.0 / (n + 1), 0.35 / (n + 1)) << "n=" << n;
    EXPECT_NEAR(remove_frac, 1.0 / n, 0.35 / n) << "n=" << n;
    // With R=2, about 2/(n+1) of the copies land on the newcomer.
    EXPECT_NEAR(replica_moves / 20000.0, 2.0 / (n + 1), 0.7 / (n + 1)) << "n=" << n;
  }
}
