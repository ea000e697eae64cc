// The data path on a localhost cluster of 4 satellites with R=2, through the
// real CLI: ingest a 20 MiB file; SIGKILL one satellite; `cat` returns the
// identical bytes; `repair` restores two copies on the remaining three;
// ingesting again transfers nothing; a corrupt copy is never served and is
// replaced; an interrupted ingest is never listed and resumes; bad input is
// a clear error with a non-zero exit.
#include "core/local_cluster.hpp"
#include "core/process.hpp"
#include "storage/sha256.hpp"
#include "storage/store.hpp"
#include "tests/cli_support.hpp"
#include "tests/test_support.hpp"

#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <random>

using namespace orbitrain;
using orbitrain::testing::slurp;
using TempDir = orbitrain::testing::TempDir;
using namespace std::chrono_literals;

namespace {

const std::string binary = ORBITRAIN_BINARY;

using Run = orbitrain::testing::CliRun;

// Runs the orbitrain CLI with `args`, stdout and stderr captured apart.
Run cli(const TempDir& dir, std::vector<std::string> args) {
  return orbitrain::testing::run_captured(binary, dir, args, 120s);
}

class Data4 : public ::testing::Test {
protected:
  void SetUp() override {
    config_ = dir_.path + "/c.toml";
    write_loopback_constellation(config_, {"data-4", 4, "sat-1", "sat-2", dir_.path + "/data", 2});
    constellation_ = load_constellation(config_);
    cluster_ = std::make_unique<LocalCluster>(binary, config_, constellation_);
    cluster_->start(30s);
    file_ = dir_.path + "/input.bin";
    std::mt19937_64 rng(42);
    std::string data(20 << 20, '\0');
    for (auto& c : data)
      c = static_cast<char>("abcdefghij klmnop\n"[rng() % 18]);
    std::ofstream(file_, std::ios::binary) << data;
  }

  nlohmann::json dataset(const std::string& name) {
    auto r = cli(dir_, {"datasets", "--config", config_, "--json"});
    EXPECT_EQ(r.exit(), "exit 0") << r.err;
    auto j = r.json();
    for (const auto& d : j["datasets"])
      if (d["name"] == name)
        return d;
    for (const auto& s : j["satellites"])
      EXPECT_TRUE(s["up"].get<bool>() || s["id"] == "sat-3") << s.dump();
    return nullptr;
  }

  TempDir dir_;
  std::string config_, file_;
  Constellation constellation_;
  std::unique_ptr<LocalCluster> cluster_;
};

} // namespace

TEST_F(Data4, IngestKillCatRepairReingest) {
  auto in = cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "d", "--json"});
  ASSERT_EQ(in.exit(), "exit 0") << in.err;
  auto j = in.json();
  EXPECT_EQ(j["chunks"], 20);
  EXPECT_EQ(j["copies_sent"], 40);
  EXPECT_EQ(j["bytes_sent"], 2 * (20 << 20));
  auto d = dataset("d");
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["min_copies"], 2);
  EXPECT_EQ(d["under_replicated"], 0);
  EXPECT_EQ(d["manifest_on"].size(), 4u);
  // Hashed and scanned in the same single pass that sent the chunks.
  const std::string input = slurp(file_);
  EXPECT_EQ(d["sha256"],
            to_hex(sha256(reinterpret_cast<const uint8_t*>(input.data()), input.size())));
  EXPECT_EQ(d["vocabulary_size"], 18); // "abcdefghij klmnop\n"

  auto* victim = cluster_->find("sat-3");
  victim->process.signal(SIGKILL);
  ASSERT_TRUE(victim->process.wait_for(10s));

  const std::string copy = dir_.path + "/copy.bin";
  auto cat = cli(dir_, {"cat", "--config", config_, "--dataset", "d"});
  ASSERT_EQ(cat.exit(), "exit 0") << cat.err;
  EXPECT_TRUE(cat.out == slurp(file_)) << "cat differs from the input";
  EXPECT_NE(cat.err.find("sat-3"), std::string::npos) << "the dead satellite is reported";

  auto before = dataset("d");
  ASSERT_FALSE(before.is_null());
  EXPECT_GT(before["under_replicated"].get<int>(), 0);
  auto rep = cli(dir_, {"repair", "--config", config_, "--json"});
  ASSERT_EQ(rep.exit(), "exit 0") << rep.err;
  EXPECT_EQ(rep.json()["copies_restored"], before["under_replicated"]);
  EXPECT_EQ(rep.json()["lost_chunks"], 0);
  auto after = dataset("d");
  EXPECT_EQ(after["min_copies"], 2);
  EXPECT_EQ(after["under_replicated"], 0);
  uint64_t chunks_on_survivors = 0;
  for (const char* id : {"sat-1", "sat-2", "sat-4"})
    chunks_on_survivors += after["per_satellite"][id]["chunks"].get<uint64_t>();
  EXPECT_EQ(chunks_on_survivors, 40u);

  // Again: nothing new goes up (the down satellite is skipped for the next owners).
  auto again = cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "d", "--json"});
  ASSERT_EQ(again.exit(), "exit 0") << again.err;
  EXPECT_EQ(again.json()["copies_sent"], 0);
  EXPECT_EQ(again.json()["bytes_sent"], 0);
  EXPECT_TRUE(again.json()["was_complete"].get<bool>());
}

TEST_F(Data4, CorruptCopyIsNeverServedAndIsReplaced) {
  // (One chunk in flight per satellite: the narrowest pipeline.)
  ASSERT_EQ(
      cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "d", "--window", "1"}).exit(),
      "exit 0");
  // Stop sat-1, flip a byte of one of its chunks through the store, restart it.
  ASSERT_EQ(describe_wait_status(cluster_->find("sat-1")->process.stop(15s)), "exit 0");
  Sha256 victim{};
  {
    auto store = Store::open(constellation_.find("sat-1")->data_dir);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto chunks = (*store)->list_chunks();
    ASSERT_FALSE(chunks->empty());
    victim = chunks->front().hash;
    auto raw = (*store)->raw_chunk(victim);
    (*raw)[100] ^= 0x01;
    ASSERT_TRUE((*store)->raw_put_chunk(victim, *raw).ok());
  }
  cluster_->start(30s, {"sat-1"});
  auto cat = cli(dir_, {"cat", "--config", config_, "--dataset", "d"});
  ASSERT_EQ(cat.exit(), "exit 0") << cat.err;
  EXPECT_TRUE(cat.out == slurp(file_));
  auto rep = cli(dir_, {"repair", "--config", config_, "--json"});
  ASSERT_EQ(rep.exit(), "exit 0") << rep.err;
  EXPECT_EQ(rep.json()["corrupt_dropped"], 1);
  EXPECT_EQ(rep.json()["copies_restored"], 1);
  auto& node1 = cluster_->find("sat-1")->process;
  const int st = node1.stop(15s);
  std::string log;
  for (const auto& line : node1.drain_lines())
    log += line + "\n";
  ASSERT_EQ(describe_wait_status(st), "exit 0") << log;
  auto store = Store::open(constellation_.find("sat-1")->data_dir);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->get_chunk(victim).ok()) << "the corrupt copy was replaced by a good one";
}

TEST_F(Data4, InterruptedIngestIsNotListedAndResumes) {
  // Kill the client as soon as it reports progress.
  auto client = Child::spawn({binary, "ingest", "--config", config_, file_, "--dataset", "part",
                              "--chunk-size", "256KiB"});
  ASSERT_TRUE(client.wait_for_line("ingest part [", 60s));
  client.signal(SIGKILL);
  ASSERT_TRUE(client.wait_for(10s));
  EXPECT_TRUE(dataset("part").is_null()) << "a partial dataset must not be listed";
  auto resumed = cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "part",
                            "--chunk-size", "256KiB", "--json"});
  ASSERT_EQ(resumed.exit(), "exit 0") << resumed.err;
  auto j = resumed.json();
  EXPECT_GT(j["copies_present"].get<int>(), 0) << "what was stored before is not sent again";
  EXPECT_EQ(j["copies_present"].get<int>() + j["copies_sent"].get<int>(), 160);
  EXPECT_EQ(dataset("part")["under_replicated"], 0);
}

TEST_F(Data4, BadInputIsAClearError) {
  auto missing = cli(dir_, {"ingest", "--config", config_, dir_.path + "/nope", "--dataset", "x"});
  EXPECT_NE(missing.exit(), "exit 0");
  EXPECT_NE(missing.err.find("cannot read " + dir_.path + "/nope"), std::string::npos)
      << missing.err;

  std::ofstream(dir_.path + "/empty.txt").close();
  auto empty =
      cli(dir_, {"ingest", "--config", config_, dir_.path + "/empty.txt", "--dataset", "x"});
  EXPECT_NE(empty.exit(), "exit 0");
  EXPECT_NE(empty.err.find("is empty"), std::string::npos) << empty.err;

  auto big =
      cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "x", "--chunk-size", "64MiB"});
  EXPECT_EQ(big.exit(), "exit 2");
  EXPECT_NE(big.err.find("chunk size"), std::string::npos) << big.err;
  auto tiny =
      cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "x", "--chunk-size", "100"});
  EXPECT_EQ(tiny.exit(), "exit 2");
  auto window =
      cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "x", "--window", "0"});
  EXPECT_NE(window.exit(), "exit 0");
  EXPECT_NE(window.err.find("--window: Value 0 not in range 1 to 64"), std::string::npos)
      << window.err;

  auto cat = cli(dir_, {"cat", "--config", config_, "--dataset", "unknown"});
  EXPECT_NE(cat.exit(), "exit 0");
  EXPECT_NE(cat.err.find("unknown dataset 'unknown'"), std::string::npos) << cat.err;

  // A name already used by other content.
  ASSERT_EQ(cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "taken"}).exit(),
            "exit 0");
  std::ofstream(dir_.path + "/other.txt") << "other content\n";
  auto taken =
      cli(dir_, {"ingest", "--config", config_, dir_.path + "/other.txt", "--dataset", "taken"});
  EXPECT_NE(taken.exit(), "exit 0");
  EXPECT_NE(taken.err.find("already exists"), std::string::npos) << taken.err;
  auto over = cli(dir_, {"ingest", "--config", config_, dir_.path + "/other.txt", "--dataset",
                         "taken", "--overwrite", "--json"});
  ASSERT_EQ(over.exit(), "exit 0") << over.err;
  auto back = cli(dir_, {"cat", "--config", config_, "--dataset", "taken"});
  EXPECT_EQ(back.out, "other content\n");
}

TEST_F(Data4, TooFewSatellitesForTheReplicas) {
  for (const char* id : {"sat-2", "sat-3", "sat-4"})
    cluster_->find(id)->process.signal(SIGKILL);
  for (const char* id : {"sat-2", "sat-3", "sat-4"})
    ASSERT_TRUE(cluster_->find(id)->process.wait_for(10s));
  auto r = cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "x", "--timeout", "3s"});
  EXPECT_NE(r.exit(), "exit 0");
  EXPECT_NE(r.err.find("only 1 satellites are reachable"), std::string::npos) << r.err;
  // Accepting one copy works, and says which satellites were down.
  auto one = cli(dir_, {"ingest", "--config", config_, file_, "--dataset", "x", "--min-replicas",
                        "1", "--timeout", "3s", "--json"});
  ASSERT_EQ(one.exit(), "exit 0") << one.err;
  EXPECT_EQ(one.json()["down"].size(), 3u);
}
