// Training windows from chunks: starts fall in the split and in chunks held
// locally, are deterministic in (seed, step, micro-batch), and the bytes read
// (also across chunk boundaries, also from a remote chunk) equal the dataset's.
#include "storage/sha256.hpp"
#include "storage/store.hpp"
#include "storage/window_reader.hpp"

#include <gtest/gtest.h>
#include <set>

using namespace orbitrain;

namespace {

// A dataset of `n` chunks of `size` bytes, held in memory; `held` says which
// are local. Counts remote reads.
struct MemorySource : ChunkSource {
  std::vector<std::vector<uint8_t>> chunks;
  std::vector<bool> held;
  int remote_reads = 0;
  bool local(size_t i) const override { return held[i]; }
  Result<std::vector<uint8_t>> read(size_t i) override {
    if (!held[i])
      ++remote_reads;
    return chunks[i];
  }
};

struct Fixture {
  std::vector<uint8_t> all;
  MemorySource source;
  msg::DatasetManifest manifest;

  Fixture(size_t n, size_t size, std::vector<bool> held) {
    for (size_t c = 0; c < n; ++c) {
      std::vector<uint8_t> chunk(size - (c == n - 1 ? size / 3 : 0));
      for (size_t i = 0; i < chunk.size(); ++i)
        chunk[i] = static_cast<uint8_t>((c * 7919 + i * 31) % 251);
      all.insert(all.end(), chunk.begin(), chunk.end());
      manifest.chunk_hashes.push_back(sha256(chunk.data(), chunk.size()));
      manifest.chunk_sizes.push_back(chunk.size());
      manifest.total_bytes += chunk.size();
      source.chunks.push_back(std::move(chunk));
    }
    source.held = std::move(held);
    manifest.name = "d";
  }
};

} // namespace

TEST(WindowReader, StartsAreLocalInSplitAndDeterministic) {
  Fixture f(10, 1000, {true, false, true, false, false, true, false, false, false, true});
  WindowReader r(f.manifest, f.source);
  auto [b, e] = r.range(Split::train);
  EXPECT_EQ(b, 0u);
  EXPECT_EQ(e, static_cast<uint64_t>(f.all.size() * 0.9));
  auto starts = r.sample_starts(Split::train, 42, 7, 1, 500, 65);
  ASSERT_EQ(starts.size(), 500u);
  std::set<size_t> chunks_used;
  for (auto s : starts) {
    EXPECT_LE(s + 65, e);
    size_t c = s / 1000;
    EXPECT_TRUE(f.source.held[c]) << "start " << s << " is in chunk " << c;
    chunks_used.insert(c);
  }
  EXPECT_EQ(chunks_used, (std::set<size_t>{0, 2, 5})); // chunk 9 lies in the val split
  EXPECT_EQ(starts, r.sample_starts(Split::train, 42, 7, 1, 500, 65));
  EXPECT_NE(starts, r.sample_starts(Split::train, 42, 8, 1, 500, 65));
  EXPECT_NE(starts, r.sample_starts(Split::train, 42, 7, 2, 500, 65));
  EXPECT_NE(starts, r.sample_starts(Split::train, 43, 7, 1, 500, 65));
  for (auto s : r.sample_starts(Split::val, 1, 1, 0, 100, 65))
    EXPECT_GE(s, e);
}

TEST(WindowReader, WindowsEqualTheDatasetAcrossChunkBoundaries) {
  Fixture f(6, 1000, {true, false, true, true, false, true});
  WindowReader r(f.manifest, f.source);
  // A window starting near the end of local chunk 0 continues in remote chunk 1.
  auto w = r.read(980, 65);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, std::vector<uint8_t>(f.all.begin() + 980, f.all.begin() + 1045));
  EXPECT_EQ(f.source.remote_reads, 1);
  for (auto s : r.sample_starts(Split::train, 3, 3, 0, 200, 129)) {
    auto win = r.read(s, 129);
    ASSERT_TRUE(win.ok());
    ASSERT_EQ(*win, std::vector<uint8_t>(f.all.begin() + static_cast<ptrdiff_t>(s),
                                         f.all.begin() + static_cast<ptrdiff_t>(s + 129)));
  }
  EXPECT_FALSE(r.read(f.all.size() - 10, 65).ok());
}

TEST(WindowReader, NothingLocalMeansNoStarts) {
  Fixture f(4, 1000, {false, false, false, false});
  WindowReader r(f.manifest, f.source);
  EXPECT_TRUE(r.sample_starts(Split::train, 1, 1, 0, 10, 65).empty());
}

TEST(WindowReader, StoreSourceReadsLocalAndFetchesTheRest) {
  char t[] = "/tmp/orbitrain-wr-XXXXXX";
  std::string dir = ::mkdtemp(t);
  Fixture f(3, 4096, {true, false, true});
  {
    auto store = Store::open(dir);
    ASSERT_TRUE(store.ok());
    for (size_t c : {0, 2})
      ASSERT_TRUE((*store)
                      ->put_chunk(f.manifest.chunk_hashes[c], f.source.chunks[c].data(),
                                  f.source.chunks[c].size())
                      .ok());
    int fetched = 0;
    StoreChunkSource src(**store, f.manifest,
                         [&](const msg::Hash& h) -> Result<std::vector<uint8_t>> {
                           ++fetched;
                           EXPECT_EQ(h, f.manifest.chunk_hashes[1]);
                           return f.source.chunks[1];
                         });
    EXPECT_TRUE(src.local(0));
    EXPECT_FALSE(src.local(1));
    WindowReader r(f.manifest, src);
    auto w = r.read(4000, 200);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*w, std::vector<uint8_t>(f.all.begin() + 4000, f.all.begin() + 4200));
    EXPECT_EQ(fetched, 1);
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}
