// Distributed sync training on a localhost cluster of real satellites,
// through the CLI: the parameters after N steps are bit-identical to
// `orbitrain train-local` with gradient accumulation over the same
// micro-batches in the same order; a worker's satellite SIGKILLed in the
// middle of the job changes nothing (every step applied once, same result);
// bad input is refused before any actor is spawned. With an orbit model and
// the aware scheduler, a worker whose battery cannot carry a task declines
// it and the job completes on the others with the same result.
#include "core/local_cluster.hpp"
#include "core/process.hpp"
#include "orbit/model.hpp"
#include "tests/test_support.hpp"

#include <cmath>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace orbitrain;
using orbitrain::testing::slurp;
using TempDir = orbitrain::testing::TempDir;
using namespace std::chrono_literals;

namespace {

const std::string binary = ORBITRAIN_BINARY;

struct Run {
  int status = -1;
  std::string out;
  std::string exit() const { return describe_wait_status(status); }
};

Run run(std::vector<std::string> args) {
  args.insert(args.begin(), binary);
  auto c = Child::spawn(args);
  Run r;
  while (auto line = c.read_line(300s))
    r.out += *line + "\n";
  r.status = c.wait_for(60s).value_or(-1);
  return r;
}

// Text with enough structure to learn from, made here (no downloads).
std::string make_text() {
  std::string t;
  const char* words[] = {"satellite", "orbit", "the", "sun", "links", "ground", "station",
                         "train",     "model", "and", "of",  "a",     "light",  "moves"};
  uint64_t x = 12345;
  while (t.size() < 120000) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t += words[(x >> 33) % 14];
    t += ((x >> 20) % 9 == 0) ? ".\n" : " ";
  }
  return t;
}

class Train3 : public ::testing::Test {
protected:
  void SetUp() override {
    config_ = dir_.path + "/c.toml";
    write_loopback_constellation(config_, {"train-3", 3, "sat-1", "sat-1", dir_.path + "/data", 2});
    std::ofstream(config_, std::ios::app) << extra_config();
    cluster_ = std::make_unique<LocalCluster>(binary, config_, load_constellation(config_));
    cluster_->start(30s);
    text_ = dir_.path + "/text.txt";
    std::ofstream(text_, std::ios::binary) << make_text();
    auto in =
        run({"ingest", "--config", config_, text_, "--dataset", "text", "--chunk-size", "16KiB"});
    ASSERT_EQ(in.exit(), "exit 0") << in.out;
  }

  // train-local over the same micro-batches: steps x accum micro-batches of `batch`.
  std::string train_local(int steps, int batch, int accum) {
    const std::string out = dir_.path + "/local.safetensors";
    local_output_.clear();
    auto r = run({"train-local",
                  "--data",
                  text_,
                  "--model",
                  "baby",
                  "--steps",
                  std::to_string(steps),
                  "--batch",
                  std::to_string(batch),
                  "--accum",
                  std::to_string(accum),
                  "--sampler",
                  "sequential",
                  "--seed",
                  "7",
                  "--threads",
                  "1",
                  "--eval-every",
                  "0",
                  "--out",
                  out});
    EXPECT_EQ(r.exit(), "exit 0") << r.out;
    local_output_ = r.out;
    return out;
  }

  std::vector<std::string> train_args(int steps, int batch, int accum, const std::string& out) {
    return {"train",
            "--config",
            config_,
            "--dataset",
            "text",
            "--model",
            "baby",
            "--steps",
            std::to_string(steps),
            "--micro-batch",
            std::to_string(batch),
            "--micro-batches-per-step",
            std::to_string(accum),
            "--sampler",
            "sequential",
            "--seed",
            "7",
            "--out",
            out,
            "--metrics",
            dir_.path + "/metrics.jsonl"};
  }

  // Appended to the constellation file.
  virtual std::string extra_config() { return ""; }

  std::vector<nlohmann::json> metrics() {
    std::vector<nlohmann::json> lines;
    std::ifstream in(dir_.path + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line))
      lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  TempDir dir_;
  std::string config_, text_, local_output_;
  std::unique_ptr<LocalCluster> cluster_;
};

} // namespace

TEST_F(Train3, SyncTrainingEqualsTrainLocalBitForBit) {
  const std::string dist = dir_.path + "/dist.safetensors";
  auto r = run(train_args(20, 4, 3, dist));
  ASSERT_EQ(r.exit(), "exit 0") << r.out;
  const auto local = train_local(20, 4, 3);
  const auto a = slurp(local), b = slurp(dist);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "distributed parameters differ from train-local's";
  auto m = metrics();
  ASSERT_EQ(m.size(), 20u);
  EXPECT_LT(m.back()["train_loss"].get<double>(), m.front()["train_loss"].get<double>());
  // The validation loss after the last step is train-local's, to the digit.
  ASSERT_FALSE(m.back()["val_loss"].is_null());
  char expected[64];
  std::snprintf(expected, sizeof expected, "val loss %.4f", m.back()["val_loss"].get<double>());
  EXPECT_NE(local_output_.find(expected), std::string::npos) << expected << "\n" << local_output_;
  EXPECT_EQ(m.back()["queue_depth"].size(), 3u);
  EXPECT_GT(m.back()["task_time_ms"][0].get<double>(), 0.0);
  // Every worker did some of the work.
  std::vector<int> per(3, 0);
  for (const auto& l : m)
    for (size_t i = 0; i < 3; ++i)
      per[i] += l["tasks_per_worker"][i].get<int>();
  for (int n : per)
    EXPECT_GT(n, 0);
}

TEST_F(Train3, WorkerLossChangesNothing) {
  const std::string dist = dir_.path + "/dist.safetensors";
  auto args = train_args(30, 4, 3, dist);
  args.insert(args.begin(), binary);
  auto job = Child::spawn(args);
  // Let a few steps pass, then kill a satellite that runs only a worker.
  ASSERT_TRUE(job.wait_for_line("step     3/30", 120s));
  cluster_->find("sat-3")->process.signal(SIGKILL);
  std::string out;
  while (auto line = job.read_line(300s))
    out += *line + "\n";
  ASSERT_EQ(describe_wait_status(job.wait_for(60s).value_or(-1)), "exit 0") << out;
  auto m = metrics();
  ASSERT_EQ(m.size(), 30u);
  for (size_t i = 0; i < m.size(); ++i)
    EXPECT_EQ(m[i]["step"].get<size_t>(), i + 1) << "steps applied once each, in order";
  EXPECT_TRUE(slurp(train_local(30, 4, 3)) == slurp(dist))
      << "the job with a lost worker must give the undisturbed result";
  // The dead worker did nothing after it died.
  EXPECT_EQ(m.back()["tasks_per_worker"][2].get<int>(), 0);
}

TEST_F(Train3, ParameterServerLossThenResumeGivesTheSameModel) {
  const std::string dist = dir_.path + "/dist.safetensors";
  auto args = train_args(20, 4, 3, dist);
  for (const char* extra : {"--checkpoint-every", "5", "--job", "j1"})
    args.push_back(extra);
  args.insert(args.begin(), binary);
  auto job = Child::spawn(args);
  ASSERT_TRUE(job.wait_for_line("step    12/20", 120s));
  // The parameter server's (and scheduler's) satellite dies.
  cluster_->find("sat-1")->process.signal(SIGKILL);
  ASSERT_TRUE(cluster_->find("sat-1")->process.wait_for(10s));
  std::string out;
  while (auto line = job.read_line(120s))
    out += *line + "\n";
  EXPECT_NE(describe_wait_status(job.wait_for(60s).value_or(-1)), "exit 0") << out;
  EXPECT_NE(out.find("--resume j1"), std::string::npos) << out;
  // Back up, and continue from the last checkpoint (step 10 or later).
  cluster_->start(30s, {"sat-1"});
  auto resumed = run({"train", "--config", config_, "--resume", "j1", "--out", dist});
  ASSERT_EQ(resumed.exit(), "exit 0") << resumed.out;
  EXPECT_NE(resumed.out.find("steps 11..20"), std::string::npos) << resumed.out;
  const auto local = slurp(train_local(20, 4, 3));
  EXPECT_TRUE(local == slurp(dist)) << "resumed job differs from the uninterrupted one";
  // `export` reads the same model back from the checkpoint.
  const std::string exported = dir_.path + "/export.safetensors";
  auto ex = run({"export", "--config", config_, "--job", "j1", "--out", exported});
  ASSERT_EQ(ex.exit(), "exit 0") << ex.out;
  EXPECT_TRUE(local == slurp(exported));
  auto none = run({"export", "--config", config_, "--job", "nope", "--out", exported});
  EXPECT_NE(none.exit(), "exit 0");
  EXPECT_NE(none.out.find("no checkpoint"), std::string::npos) << none.out;
}

// Async: every gradient is a step, applied on arrival when its parameters
// are at most S versions old. All three workers start on version 0, so the
// first three gradients lag 0, 1 and 2 versions: with S = 1 the third is
// refused, whatever the timing.
TEST_F(Train3, AsyncTrainsAndNeverAppliesAGradientStalerThanTheBound) {
  const std::string dist = dir_.path + "/async.safetensors";
  auto args = train_args(90, 8, 3, dist);
  for (const char* extra : {"--mode", "async", "--staleness", "1", "--warmup", "5", "--lr", "2e-3"})
    args.push_back(extra);
  auto r = run(args);
  ASSERT_EQ(r.exit(), "exit 0") << r.out;
  EXPECT_NE(r.out.find("async (staleness <= 1)"), std::string::npos) << r.out;
  auto m = metrics();
  ASSERT_EQ(m.size(), 90u);
  int max_lag = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i]["step"].get<size_t>(), i + 1);
    EXPECT_LE(m[i]["staleness"].get<int>(), 1) << "step " << i + 1;
    max_lag = std::max(max_lag, m[i]["staleness"].get<int>());
  }
  EXPECT_EQ(max_lag, 1) << "the second gradient of the job lags one version";
  EXPECT_GT(m.back()["refused"].get<int>(), 0) << "the third gradient lags two: refused";
  auto mean_loss = [&](size_t from, size_t to) {
    double sum = 0;
    for (size_t i = from; i < to; ++i)
      sum += m[i]["train_loss"].get<double>();
    return sum / static_cast<double>(to - from);
  };
  EXPECT_LT(mean_loss(75, 90), mean_loss(0, 15) - 0.3) << "async training must learn";
  ASSERT_FALSE(m.back()["val_loss"].is_null());
  EXPECT_LT(m.back()["val_loss"].get<double>(), m.front()["train_loss"].get<double>());
  EXPECT_FALSE(slurp(dist).empty());
}

TEST_F(Train3, BadInputIsRefusedBeforeSpawning) {
  auto mode = run({"train", "--config", config_, "--dataset", "text", "--mode", "hogwild"});
  EXPECT_EQ(mode.exit(), "exit 2");
  EXPECT_NE(mode.out.find("--mode must be sync or async"), std::string::npos) << mode.out;

  auto unknown = run({"train", "--config", config_, "--dataset", "nope", "--steps", "2"});
  EXPECT_NE(unknown.exit(), "exit 0");
  EXPECT_NE(unknown.out.find("unknown dataset 'nope'"), std::string::npos) << unknown.out;

  const std::string model = dir_.path + "/m.json";
  std::ofstream(model)
      << R"({"n_layer":1,"n_head":1,"n_embd":16,"block_size":8,"vocab_size":200,"bias":true})";
  auto vocab = run({"train", "--config", config_, "--dataset", "text", "--model", model});
  EXPECT_EQ(vocab.exit(), "exit 2");
  EXPECT_NE(vocab.out.find("vocabulary of 200"), std::string::npos) << vocab.out;

  cluster_->find("sat-2")->process.signal(SIGKILL);
  ASSERT_TRUE(cluster_->find("sat-2")->process.wait_for(10s));
  auto down = run({"train", "--config", config_, "--dataset", "text", "--timeout", "3s"});
  EXPECT_NE(down.exit(), "exit 0");
  EXPECT_NE(down.out.find("unreachable"), std::string::npos) << down.out;
  EXPECT_NE(down.out.find("sat-2"), std::string::npos) << down.out;
}

TEST(TrainConfig, ParameterServerMustBeASatelliteOfTheFile) {
  TempDir dir;
  const std::string config = dir.path + "/c.toml";
  std::ofstream(config) << "name = \"x\"\n[[satellite]]\nid = \"a\"\nhost = \"127.0.0.1\"\n"
                        << "port = 4999\n[job]\nscheduler = \"a\"\nparameter_server = \"zz\"\n";
  auto r = run({"train", "--config", config, "--dataset", "d"});
  EXPECT_EQ(r.exit(), "exit 2");
  EXPECT_NE(r.out.find(":8: job.parameter_server: 'zz' is not a satellite"), std::string::npos)
      << r.out;
}

// The worker's energy guard. One orbit of 10 at 2000 km (53:10/1/0), the Sun
// in its plane (March equinox, plane 0's node on the vernal equinox), time
// scale 1: sat-1, sat-2 and sat-3 hold slots 0, 1, 2, 36 degrees (12.7 min)
// apart, slot 2 ahead. `start` is placed so that the nodes start 5 s after
// slot 2 entered the Earth's shadow: for the next ~12 minutes sat-3 is in
// eclipse, sat-1 and sat-2 in sunlight. Every battery starts at the
// depth-of-discharge floor: in sunlight a busy core still charges it (100 W
// against 5 + 40 W), in shadow even idling takes it below. So sat-3 may take
// no task, and sat-1 and sat-2 may take any.
//
// Before its first load report the scheduler knows nothing of sat-3's
// battery and gives it one of step 1's three micro-batches: the worker must
// decline it (its guard, orbit/guard.hpp) and another must compute it.
class Train3InShadow : public Train3 {
protected:
  std::string extra_config() override {
    const std::string orbit_text = "\n[orbit]\nwalker = \"53:10/1/0\"\naltitude_km = 2000\n"
                                   "epoch = \"2026-03-20T00:00:00Z\"\ntime_scale = 1\n";
    const std::string rest = "[links]\nmax_range_km = 8000\n[energy]\nsolar_w = 100\n"
                             "battery_wh = 20\ndepth_of_discharge = 0.5\nidle_w = 5\n"
                             "per_core_w = 40\ninitial_soc = 0.5\n";
    // When does slot 2 enter a shadow that slots 0 and 1 stay out of for
    // the next 11 minutes? (Simulated seconds since the epoch.)
    const std::string probe = dir_.path + "/probe.toml";
    write_loopback_constellation(probe, {"probe", 3, "sat-1", "sat-1", dir_.path + "/p", 2});
    std::ofstream(probe, std::ios::app) << orbit_text << rest;
    orbit::ConstellationModel m(orbit::model_spec(load_constellation(probe)));
    for (const auto& e : m.eclipses(2, 0, 86400)) {
      if (e.begin <= 0 || e.end - e.begin < 660 || !m.eclipses(0, e.begin, e.begin + 660).empty() ||
          !m.eclipses(1, e.begin, e.begin + 660).empty())
        continue;
      shadow_from_ = e.begin;
      break;
    }
    if (shadow_from_ < 0)
      throw std::runtime_error("slot 2 is never in shadow alone");
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const double start = std::floor(now) - (shadow_from_ + 5);
    std::string text = orbit_text;
    text.replace(text.find("time_scale"), 0, "start = \"" + format_utc_time(start) + "\"\n");
    return text + rest;
  }
  double shadow_from_ = -1;
};

TEST_F(Train3InShadow, AWorkerWhoseBatteryCannotCarryATaskDeclinesIt) {
  const std::string dist = dir_.path + "/dist.safetensors";
  auto args = train_args(6, 4, 3, dist);
  for (const char* extra : {"--scheduler", "aware"})
    args.push_back(extra);
  auto r = run(args);
  ASSERT_EQ(r.exit(), "exit 0") << r.out;
  auto m = metrics();
  ASSERT_EQ(m.size(), 6u);
  for (size_t i = 0; i < m.size(); ++i)
    EXPECT_EQ(m[i]["tasks_per_worker"][2].get<int>(), 0)
        << "sat-3 computed a task in step " << i + 1 << " in shadow at its floor";
  EXPECT_GE(m.back()["declined"].get<int>(), 1) << "sat-3 was given a task and declined it";
  EXPECT_EQ(m.back()["reassigned"].get<int>(), 0) << "a declined task is no failure";
  // Whoever computed the declined micro-batch, the step is the same.
  EXPECT_TRUE(slurp(train_local(6, 4, 3)) == slurp(dist));
}
