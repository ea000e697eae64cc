// Test helper for the atomic-checkpoint test: writes checkpoints of job
// "crash" into the store at argv[1] forever, each step's state filled with a
// pattern of its step, and prints "committed <step>" after each write. The
// test kills it with SIGKILL at an arbitrary moment.
#include "storage/store.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: checkpoint_writer DIR\n");
    return 2;
  }
  auto store = orbitrain::Store::open(argv[1]);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
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
