// `orbitrain bench compute --turns IN,OUT` run as tools/compare_speed.sh
// --lockstep runs it: one byte read from IN before each step, one written to
// OUT after it, every step time in the JSON. Plain files stand in for the
// pipes: a file that holds fewer bytes than there are steps ends like a peer
// that stopped taking turns.
#include "tests/cli_support.hpp"
#include "tests/test_support.hpp"

#include <chrono>
#include <fstream>
#include <gtest/gtest.h>

using namespace orbitrain::testing;
using namespace std::chrono_literals;

namespace {

const std::string binary = ORBITRAIN_BINARY;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Three steps (one warm-up, two timed) of the baby model.
CliRun bench_with_turns(const TempDir& dir, const std::string& turns) {
  return run_captured(binary, dir,
                      {"bench", "compute", "--model", "baby", "--batch", "2", "--threads", "1",
                       "--warmup", "1", "--steps", "2", "--json", "--turns", turns},
                      120s);
}

TEST(BenchComputeCli, TakesOneTurnPerStep) {
  TempDir dir;
  const std::string in = dir.path + "/in", out = dir.path + "/out";
  write_bytes(in, "ttt");
  write_bytes(out, "");
  const CliRun r = bench_with_turns(dir, in + "," + out);
  ASSERT_TRUE(r.ok()) << r.exit() << "\n" << r.err;
  EXPECT_EQ(slurp(out), "ttt"); // one turn passed on per step, warm-up included
  const auto j = r.json();
  EXPECT_TRUE(j.at("lockstep").get<bool>());
  ASSERT_EQ(j.at("step_times_s").size(), 2u);
  for (const auto& t : j.at("step_times_s"))
    EXPECT_GT(t.get<double>(), 0.0);
}

TEST(BenchComputeCli, StopsWhenThePeerStopsTakingTurns) {
  TempDir dir;
  const std::string in = dir.path + "/in", out = dir.path + "/out";
  write_bytes(in, "tt"); // two turns for three steps
  write_bytes(out, "");
  const CliRun r = bench_with_turns(dir, in + "," + out);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("--turns: the peer closed its pipe"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(out), "tt"); // the third step never ran
}

TEST(BenchComputeCli, RefusesTurnsThatAreNotTwoPipes) {
  TempDir dir;
  const CliRun one = bench_with_turns(dir, dir.path + "/in");
  EXPECT_FALSE(one.ok());
  EXPECT_NE(one.err.find("--turns wants IN,OUT"), std::string::npos) << one.err;
  const CliRun missing = bench_with_turns(dir, dir.path + "/no-such-in," + dir.path + "/out");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.err.find("cannot open " + dir.path + "/no-such-in"), std::string::npos)
      << missing.err;
}

} // namespace
