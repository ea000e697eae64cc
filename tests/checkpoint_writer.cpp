// Test helper for the crash tests (checkpoint_crash_test.cpp), killed with
// SIGKILL at an arbitrary moment.
//
// `checkpoint_writer DIR`: writes checkpoints of job "crash" into the store
// at DIR forever, each step's state filled with a pattern of its step, and
// prints "committed <step>" after each write.
//
// `checkpoint_writer DIR chunks`: puts 256 KiB chunks forever, chunk i
// filled with a pattern of i; after every 16 it stores a manifest "crash"
// listing all chunks so far and prints "committed <count>".
#include "storage/store.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// Chunk i of the chunks mode (the test rebuilds them to compare).
std::vector<uint8_t> chunk_bytes(uint64_t i) {
  std::vector<uint8_t> c(256u << 10);
  for (size_t k = 0; k < c.size(); ++k)
    c[k] = static_cast<uint8_t>(i * 131 + k / 512);
  std::memcpy(c.data(), &i, sizeof i);
  return c;
}

int write_chunks(orbitrain::Store& store) {
  orbitrain::msg::DatasetManifest m;
  m.name = "crash";
  m.chunk_size = 256u << 10;
  m.replicas = 1;
  for (uint64_t i = 0;; ++i) {
    auto c = chunk_bytes(i);
    auto key = orbitrain::sha256(c.data(), c.size());
    auto put = store.put_chunk(key, c.data(), c.size());
    if (!put) {
      std::fprintf(stderr, "%s\n", put.error().message.c_str());
      return 1;
    }
    m.chunk_hashes.push_back(key);
    m.chunk_sizes.push_back(c.size());
    m.total_bytes += c.size();
    if ((i + 1) % 16 == 0) {
      if (auto st = store.put_manifest(m); !st) {
        std::fprintf(stderr, "%s\n", st.error().message.c_str());
        return 1;
      }
      std::printf("committed %llu\n", static_cast<unsigned long long>(i + 1));
      std::fflush(stdout);
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2 && !(argc == 3 && std::strcmp(argv[2], "chunks") == 0)) {
    std::fprintf(stderr, "usage: checkpoint_writer DIR [chunks]\n");
    return 2;
  }
  auto store = orbitrain::Store::open(argv[1]);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  if (argc == 3)
    return write_chunks(**store);
  for (uint64_t step = 1;; ++step) {
    // 20-52 MiB, so writes take long enough to be interrupted mid-way.
    std::vector<uint8_t> state((20u << 20) + (step % 4) * (8u << 20));
    for (size_t i = 0; i < state.size(); i += 4096)
      state[i] = static_cast<uint8_t>(step * 7 + i / 4096);
    state.back() = static_cast<uint8_t>(step);
    auto st = (*store)->put_checkpoint("crash", step, state);
    if (!st) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 1;
    }
    std::printf("committed %llu\n", static_cast<unsigned long long>(step));
    std::fflush(stdout);
  }
}
