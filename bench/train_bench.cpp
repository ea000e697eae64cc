// Distributed training speed: sync training of a model on 1 and on 2
// localhost satellites (one compute thread each), against PyTorch
// DistributedDataParallel with the gloo backend on 1 and 2 processes (one
// thread each), measured alternately in the same run so both see the same
// machine. Prints one JSON object: per configuration the global tokens/s of
// every run (min, median), scaling efficiency (2 satellites vs 2 x 1), the
// time per step not spent computing (gradient and parameter exchange plus
// the parameter server's update), and the bytes moved per step.
//
//   build/bin/train_bench [--model small] [--micro-batch 8] [--steps 12]
//       [--warmup 3] [--runs 3] [--data FILE] [--no-torch] [--colocated]
//
// --colocated also runs, in each round, two independent 1-satellite jobs at
// the same time (two constellations of one satellite each, no traffic
// between them): how much two training processes slow each other down on
// this host with no exchange at all, the ceiling for 2-satellite scaling here.
//
// Throughput counts the steps after `warmup` (first-touch allocations and
// oneDNN primitive creation are excluded on both sides), and one untimed job
// runs on each constellation before the timed ones. The PyTorch side is
// bench/ddp_torch.py, run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
// (or OPENBLAS_CORETYPE as tools/peer_openblas.sh picks it)
// (OpenBLAS at its best on this CPU; see docs/performance.md).
#include "core/local_cluster.hpp"
#include "core/process.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace orbitrain;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Options {
  std::string model = "small", data, binary = ORBITRAIN_BINARY;
  std::string python = "/usr/bin/python3", script = ORBITRAIN_SOURCE_DIR "/bench/ddp_torch.py";
  int micro_batch = 8, steps = 12, warmup = 3, runs = 3;
  bool torch = true, colocated = false;
};

// Runs a command; its stdout lines, or an error naming the command.
std::vector<std::string> run(const std::vector<std::string>& argv) {
  auto c = Child::spawn(argv);
  std::vector<std::string> lines;
  while (auto line = c.read_line(1h))
    lines.push_back(*line);
  auto st = c.wait_for(10min);
  if (!st || describe_wait_status(*st) != "exit 0") {
    std::string cmd;
    for (const auto& a : argv)
      cmd += a + " ";
    std::string tail;
    for (size_t i = lines.size() > 10 ? lines.size() - 10 : 0; i < lines.size(); ++i)
      tail += "\n  " + lines[i];
    throw std::runtime_error("`" + cmd + "` failed (" +
                             (st ? describe_wait_status(*st) : "timeout") + "):" + tail);
  }
  return lines;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
}

json summary(const std::vector<double>& v) {
  return {{"runs", v},
          {"min", v.empty() ? 0 : *std::min_element(v.begin(), v.end())},
          {"median", median(v)}};
}

// One localhost constellation of `n` satellites with the dataset ingested.
struct Cluster {
  std::string config;
  std::unique_ptr<LocalCluster> cluster;
};

Cluster start_cluster(const Options& o, const std::string& dir, int n,
                      const std::string& tag = "") {
  Cluster c;
  const std::string name = std::to_string(n) + tag;
  c.config = dir + "/c" + name + ".toml";
  // Every satellite holds the whole dataset (replicas = n): the benchmark
  // is about training traffic, not data placement.
  write_loopback_constellation(c.config,
                               {"bench-" + name, n, "sat-1", "sat-1", dir + "/data" + name, n});
  c.cluster = std::make_unique<LocalCluster>(o.binary, c.config, load_constellation(c.config));
  c.cluster->start(60s);
  run({o.binary, "ingest", "--config", c.config, o.data, "--dataset", "bench"});
  return c;
}

struct OurRun {
  double tokens_per_s = 0, exchange_ms = 0, update_ms = 0, compute_ms = 0, step_ms = 0;
  double bytes_per_step = 0;
};

OurRun train(const Options& o, const Cluster& c, int n, const std::string& dir,
             const std::string& tag = "") {
  const std::string metrics = dir + "/metrics" + tag + ".jsonl";
  run({o.binary,
       "train",
       "--config",
       c.config,
       "--dataset",
       "bench",
       "--model",
       o.model,
       "--steps",
       std::to_string(o.steps),
       "--micro-batch",
       std::to_string(o.micro_batch),
       "--micro-batches-per-step",
       std::to_string(n),
       "--threads",
       "1",
       "--eval-every",
       "0",
       "--eval-batches",
       "1",
       "--checkpoint-every",
       "0",
       "--metrics",
       metrics,
       "--log-every",
       "0"});
  std::vector<json> lines;
  std::ifstream in(metrics);
  for (std::string l; std::getline(in, l);)
    lines.push_back(json::parse(l));
  if (static_cast<int>(lines.size()) != o.steps)
    throw std::runtime_error("expected " + std::to_string(o.steps) + " metrics lines");
  // Steps warmup+1 .. steps-1 (the last one also evaluates).
  const auto& first = lines[static_cast<size_t>(o.warmup) - 1];
  const auto& last = lines[lines.size() - 2];
  double tokens = 0;
  std::vector<double> exchange, update, compute, step, bytes;
  for (size_t i = static_cast<size_t>(o.warmup); i + 1 < lines.size(); ++i) {
    const auto& l = lines[i];
    tokens += l["tokens"].get<double>();
    step.push_back(l["step_ms"].get<double>());
    compute.push_back(l["compute_ms"].get<double>());
    update.push_back(l["update_ms"].get<double>());
    exchange.push_back(l["step_ms"].get<double>() - l["compute_ms"].get<double>());
    bytes.push_back(l["bytes_in"].get<double>() + l["bytes_out"].get<double>());
  }
  OurRun r;
  r.tokens_per_s = tokens / (last["elapsed_s"].get<double>() - first["elapsed_s"].get<double>());
  r.exchange_ms = median(exchange);
  r.update_ms = median(update);
  r.compute_ms = median(compute);
  r.step_ms = median(step);
  r.bytes_per_step = median(bytes);
  return r;
}

// The OPENBLAS_CORETYPE under which PyTorch runs at its best here (empty:
// OpenBLAS's own detection), as tools/peer_openblas.sh decides.
const std::string& peer_coretype() {
  static const std::string core = [] {
    auto out = run({"/bin/bash", ORBITRAIN_SOURCE_DIR "/tools/peer_openblas.sh"});
    return out.empty() ? std::string() : out.front();
  }();
  return core;
}

json torch_run(const Options& o, int world) {
  std::vector<std::string> argv = {"/usr/bin/env", "-u", "OPENBLAS_CORETYPE", "-u",
                                   "OPENBLAS_L2_SIZE"};
  if (!peer_coretype().empty())
    argv.push_back("OPENBLAS_CORETYPE=" + peer_coretype());
  for (std::string a :
       {o.python, o.script, std::string("--data"), o.data, std::string("--model"), o.model,
        std::string("--world"), std::to_string(world), std::string("--threads"), std::string("1"),
        std::string("--batch"), std::to_string(o.micro_batch), std::string("--steps"),
        std::to_string(o.steps - o.warmup), std::string("--warmup"), std::to_string(o.warmup)})
    argv.push_back(a);
  auto lines = run(argv);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (!it->empty() && (*it)[0] == '{')
      return json::parse(*it);
  throw std::runtime_error("bench/ddp_torch.py printed no result");
}

std::string default_corpus(const std::string& dir) {
  // The demo's corpus: English text every Debian machine has.
  const std::string path = dir + "/corpus.txt";
  run({ORBITRAIN_BINARY, "demo", "--write-corpus", path});
  return path;
}

} // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model")
      o.model = next();
    else if (a == "--micro-batch")
      o.micro_batch = std::stoi(next());
    else if (a == "--steps")
      o.steps = std::stoi(next());
    else if (a == "--warmup")
      o.warmup = std::stoi(next());
    else if (a == "--runs")
      o.runs = std::stoi(next());
    else if (a == "--data")
      o.data = next();
    else if (a == "--no-torch")
      o.torch = false;
    else if (a == "--colocated")
      o.colocated = true;
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  if (o.warmup < 1 || o.steps < o.warmup + 3) {
    std::cerr << "need --warmup >= 1 and --steps >= warmup + 3\n";
    return 2;
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   ("orbitrain-train-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  int status = 0;
  try {
    if (o.data.empty())
      o.data = default_corpus(dir.string());
    auto one = start_cluster(o, dir.string(), 1);
    auto two = start_cluster(o, dir.string(), 2);
    // One untimed job on each constellation first: a satellite is a
    // long-running process, and the first job on a fresh one also pays for
    // its first touches of memory, oneDNN's kernels and the store's cache
    // (the runs after it did not; PyTorch's processes each start fresh and
    // pay theirs in their own warm-up steps).
    std::optional<Cluster> other; // the second 1-satellite constellation
    if (o.colocated)
      other = start_cluster(o, dir.string(), 1, "b");
    (void)train(o, one, 1, dir.string());
    (void)train(o, two, 2, dir.string());
    if (other)
      (void)train(o, *other, 1, dir.string(), "b");
    // Two independent 1-satellite jobs at once; their summed tokens/s.
    auto side_by_side = [&] {
      OurRun a, b;
      std::exception_ptr failed;
      std::thread t([&] {
        try {
          b = train(o, *other, 1, dir.string(), "b");
        } catch (...) {
          failed = std::current_exception();
        }
      });
      try {
        a = train(o, one, 1, dir.string(), "a");
      } catch (...) {
        failed = std::current_exception();
      }
      t.join();
      if (failed)
        std::rethrow_exception(failed);
      return a.tokens_per_s + b.tokens_per_s;
    };
    std::vector<double> ours1, ours2, theirs1, theirs2, ratio, eff, their_eff, exchange, update,
        compute, step, bytes, allreduce, step1, compute1, exchange1, pair, pair_eff;
    for (int r = 0; r < o.runs; ++r) {
      const auto a = train(o, one, 1, dir.string());
      const auto b = train(o, two, 2, dir.string());
      ours1.push_back(a.tokens_per_s);
      ours2.push_back(b.tokens_per_s);
      eff.push_back(b.tokens_per_s / (2 * a.tokens_per_s));
      step1.push_back(a.step_ms);
      compute1.push_back(a.compute_ms);
      exchange1.push_back(a.exchange_ms);
      exchange.push_back(b.exchange_ms);
      update.push_back(b.update_ms);
      compute.push_back(b.compute_ms);
      step.push_back(b.step_ms);
      bytes.push_back(b.bytes_per_step);
      if (other) {
        pair.push_back(side_by_side());
        pair_eff.push_back(pair.back() / (2 * a.tokens_per_s));
      }
      if (o.torch) {
        const auto t1 = torch_run(o, 1), t2 = torch_run(o, 2);
        theirs1.push_back(t1["tokens_per_s"].get<double>());
        theirs2.push_back(t2["tokens_per_s"].get<double>());
        allreduce.push_back(t2["allreduce_s"].get<double>() * 1000);
        their_eff.push_back(theirs2.back() / (2 * theirs1.back()));
        ratio.push_back(b.tokens_per_s / theirs2.back());
      }
    }
    json out = {{"benchmark", "sync training, 2 localhost satellites vs PyTorch DDP gloo"},
                {"model", o.model},
                {"micro_batch", o.micro_batch},
                {"threads_per_satellite", 1},
                {"steps", o.steps},
                {"warmup_steps", o.warmup},
                {"data", o.data},
                {"orbitrain_1_tokens_per_s", summary(ours1)},
                {"orbitrain_1_step_ms", summary(step1)},
                {"orbitrain_1_compute_ms", summary(compute1)},
                {"orbitrain_1_exchange_ms_per_step", summary(exchange1)},
                {"orbitrain_2_tokens_per_s", summary(ours2)},
                {"orbitrain_scaling_efficiency", summary(eff)},
                {"orbitrain_step_ms", summary(step)},
                {"orbitrain_compute_ms", summary(compute)},
                {"orbitrain_exchange_ms_per_step", summary(exchange)},
                {"orbitrain_ps_update_ms", summary(update)},
                {"orbitrain_bytes_per_step", summary(bytes)}};
    if (other) {
      out["orbitrain_two_independent_1_tokens_per_s"] = summary(pair);
      out["orbitrain_two_independent_efficiency"] = summary(pair_eff);
    }
    if (o.torch) {
      out["pytorch_ddp_1_tokens_per_s"] = summary(theirs1);
      out["pytorch_ddp_2_tokens_per_s"] = summary(theirs2);
      out["pytorch_scaling_efficiency"] = summary(their_eff);
      out["pytorch_allreduce_ms"] = summary(allreduce);
      out["orbitrain_vs_pytorch_2"] = summary(ratio);
    }
    std::cout << out.dump(2) << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "train_bench: " << e.what() << "\n";
    status = 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return status;
}
