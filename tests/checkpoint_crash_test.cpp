// Stores under a crash: a writer process is killed with SIGKILL in the
// middle of writing.
// - Checkpoints: the one read afterwards is one whole checkpoint, at least as
//   new as the last one the writer reported committed, never a mix of two.
// - Chunks (written without the WAL, made durable by the manifest): every
//   chunk of the last manifest reported is there and intact, and every chunk
//   the store lists reads back as valid (never an index entry without its
//   bytes, never bytes that fail their key).
#include "core/process.hpp"
#include "storage/store.hpp"

#include <csignal>
#include <gtest/gtest.h>
#include <string>
#include <vector>

using namespace orbitrain;
using namespace std::chrono_literals;

namespace {

// Runs the writer with `args` until it has reported `commits` commits, then
// SIGKILLs it; the number in its last "committed N" line (0 if it stalled,
// which fails the test).
uint64_t kill_after_commits(const std::vector<std::string>& args, int commits) {
  auto writer = Child::spawn(args);
  uint64_t last = 0;
  for (int i = 0; i < commits; ++i) {
    auto line = writer.wait_for_line("committed ", 60s);
    EXPECT_TRUE(line) << "writer stalled";
    if (!line)
      break;
    last = std::stoull(line->substr(10));
  }
  writer.signal(SIGKILL);
  EXPECT_TRUE(writer.wait_for(10s));
  return last;
}

} // namespace

TEST(CheckpointCrash, KilledWriterLeavesAWholeCheckpoint) {
  char t[] = "/tmp/orbitrain-ckpt-XXXXXX";
  std::string dir = ::mkdtemp(t);
  for (int round = 0; round < 3; ++round) {
    // Let it commit a few, then kill it at a moment that depends on the round
    // (right after a commit line, or while the next write is under way).
    const uint64_t last = kill_after_commits({CHECKPOINT_WRITER, dir}, 2 + round);
    ASSERT_GT(last, 0u);
    auto store = Store::open(dir);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto c = (*store)->latest_checkpoint("crash");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_GE(c->step, last);
    // Its content is exactly the state of its own step.
    const uint64_t step = c->step;
    ASSERT_EQ(c->state.size(), (20u << 20) + (step % 4) * (8u << 20));
    for (size_t i = 0; i + 1 < c->state.size(); i += 4096)
      ASSERT_EQ(c->state[i], static_cast<uint8_t>(step * 7 + i / 4096)) << "offset " << i;
    EXPECT_EQ(c->state.back(), static_cast<uint8_t>(step));
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(ChunkCrash, KilledWriterKeepsCommittedChunksAndNoHalfChunk) {
  char t[] = "/tmp/orbitrain-chunks-XXXXXX";
  std::string dir = ::mkdtemp(t);
  for (int round = 0; round < 3; ++round) {
    const uint64_t last = kill_after_commits({CHECKPOINT_WRITER, dir, "chunks"}, 2 + round);
    ASSERT_GT(last, 0u);
    auto store = Store::open(dir);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto m = (*store)->get_manifest("crash");
    ASSERT_TRUE(m.ok()) << m.error().message;
    ASSERT_GE(m->chunk_hashes.size(), last);
    for (size_t i = 0; i < m->chunk_hashes.size(); ++i) {
      auto c = (*store)->get_chunk(m->chunk_hashes[i]);
      ASSERT_TRUE(c.ok()) << "chunk " << i << " of the manifest: " << c.error().message;
      EXPECT_EQ(c->size(), m->chunk_sizes[i]);
    }
    auto listed = (*store)->list_chunks();
    ASSERT_TRUE(listed.ok()) << listed.error().message;
    EXPECT_GE(listed->size(), m->chunk_hashes.size());
    for (const auto& info : *listed) {
      auto c = (*store)->get_chunk(info.hash);
      ASSERT_TRUE(c.ok()) << "listed chunk " << short_hex(info.hash) << ": " << c.error().message;
      EXPECT_EQ(c->size(), info.size);
    }
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}
