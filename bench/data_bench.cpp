// Data-path benchmark (issue: storage). In one run, on the same disk:
//   raw_put     plain RocksDB puts (default write options: through the WAL)
//               of the file's 1 MiB chunks into one store
//               (Store::raw_put_chunk: no hashing, no network, one copy)
//   store_put   the store's own put of the same chunks into a second store
//               (Store::put_chunk: SHA-256 check, no WAL, then
//               commit_chunks): a reference, not a target
//   ingest      `orbitrain ingest` of the same file into a 4-satellite
//               localhost cluster with R=2 (hashing, two copies, CAF, TCP)
//   raw_read    plain RocksDB gets (default read options: RocksDB's CRC32C
//               verified) of every chunk, each then checked by SHA-256
//   store_read  the store's own verified read (Store::read_chunk): a reference
//   cat         `orbitrain cat` of the dataset back, to /dev/null
// and the ingest client's peak RSS (its VmHWM). Each timed phase starts after sync(2).
// Prints one JSON object: each rate as min/median over --runs, and the
// ratios the targets are stated in (ingest/raw_put >= 0.5, cat/raw_read >= 0.7).
//
//   build/bin/data_bench --mib 256 --runs 3 [--binary build/bin/orbitrain]
#include "core/local_cluster.hpp"
#include "core/process.hpp"
#include "storage/sha256.hpp"
#include "storage/store.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

using namespace orbitrain;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

struct Stats {
  std::vector<double> v;
  nlohmann::json json() const {
    auto s = v;
    std::sort(s.begin(), s.end());
    return {{"min", s.front()}, {"median", s[s.size() / 2]}, {"max", s.back()}, {"runs", s}};
  }
  double median() const {
    auto s = v;
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
  }
};

// Before each timed phase: write back what the previous phases left dirty
// in the page cache, so that no phase (the baselines included) pays for
// another's writeback.
void settle() {
  ::sync();
}

// VmHWM of process `pid` once it runs orbitrain (0 before the exec, when
// it is still a copy of this process, and after it is gone).
long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  bool orbitrain = false;
  while (std::getline(in, line)) {
    if (line.rfind("Name:", 0) == 0)
      orbitrain = line.find("orbitrain") != std::string::npos;
    if (orbitrain && line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6));
  }
  return 0;
}

int run_cli(const std::string& binary, std::vector<std::string> args, long* rss_kib = nullptr) {
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" >/dev/null 2>/dev/null", "sh",
                                   binary};
  argv.insert(argv.end(), args.begin(), args.end());
  // sh execs orbitrain (same pid). Its peak RSS is read from its own
  // VmHWM, polled until it exits: the rusage's ru_maxrss would include this
  // benchmark's own peak, which Linux carries over the fork and the exec.
  auto c = Child::spawn(argv);
  std::optional<int> st;
  const auto deadline = clock_type::now() + 1h;
  while (!st && clock_type::now() < deadline) {
    if (rss_kib)
      *rss_kib = std::max(*rss_kib, peak_rss_kib(c.pid()));
    st = c.wait_for(10ms);
  }
  return st.value_or(-1);
}

// Reads `in` from its start in whole chunks of chunk.size() bytes, calling
// fn(i) with `chunk` holding the i-th (a trailing partial chunk is skipped:
// the benchmark's file is a whole number of chunks).
template <class Fn> void for_each_chunk(std::ifstream& in, std::vector<uint8_t>& chunk, Fn fn) {
  in.clear();
  in.seekg(0);
  for (size_t i = 0;
       in.read(reinterpret_cast<char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
       ++i)
    fn(i);
}

} // namespace

int main(int argc, char** argv) {
  size_t mib = 256;
  int runs = 3;
  std::string binary = ORBITRAIN_BINARY;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--mib")
      mib = std::stoul(argv[i + 1]);
    else if (a == "--runs")
      runs = std::stoi(argv[i + 1]);
    else if (a == "--binary")
      binary = argv[i + 1];
  }
  char t[] = "/tmp/orbitrain-bench-XXXXXX";
  const std::string dir = ::mkdtemp(t);
  const std::string file = dir + "/input.txt";
  {
    // Text-like bytes (a 40-symbol alphabet), generated fast.
    std::mt19937_64 rng(7);
    std::vector<char> buf(1 << 20);
    std::ofstream out(file, std::ios::binary);
    for (size_t m = 0; m < mib; ++m) {
      for (size_t i = 0; i < buf.size(); i += 8) {
        uint64_t r = rng();
        for (int k = 0; k < 8; ++k, r >>= 8)
          buf[i + static_cast<size_t>(k)] =
              "abcdefghijklmnopqrstuvwxyz .,;:!?\nABCDE"[(r & 0xff) % 40];
      }
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    }
  }
  const double mb = static_cast<double>(mib) * 1048576.0 / 1e6;
  Stats raw_put, store_put, raw_read, store_read, ingest, cat;
  long client_rss_kib = 0;
  for (int r = 0; r < runs; ++r) {
    // Baselines: one store, the same chunks.
    {
      const std::string sdir = dir + "/raw-" + std::to_string(r);
      auto opened = Store::open(sdir);
      auto store = std::move(opened.value());
      std::ifstream in(file, std::ios::binary);
      std::vector<uint8_t> chunk(1 << 20);
      settle();
      auto t0 = clock_type::now();
      for_each_chunk(in, chunk, [&](size_t i) {
        Sha256 k{}; // a unique key without hashing: the chunk's index
        k[31] = static_cast<uint8_t>(i);
        k[30] = static_cast<uint8_t>(i >> 8);
        k[29] = static_cast<uint8_t>(i >> 16);
        (void)store->raw_put_chunk(k, chunk);
      });
      raw_put.v.push_back(mb / seconds_since(t0));
      // Read-and-verify needs keys that are the chunks' hashes: re-key them
      // (the store's own put, timed into a second store first; it hashes
      // each chunk itself, KeyCheck::sha256).
      std::vector<Sha256> real;
      for_each_chunk(in, chunk,
                     [&](size_t) { real.push_back(sha256(chunk.data(), chunk.size())); });
      {
        auto second = std::move(Store::open(dir + "/store-" + std::to_string(r)).value());
        settle();
        auto t = clock_type::now();
        for_each_chunk(in, chunk, [&](size_t i) {
          (void)second->put_chunk(real[i], chunk.data(), chunk.size());
        });
        (void)second->commit_chunks();
        store_put.v.push_back(mb / seconds_since(t));
      }
      for_each_chunk(in, chunk, [&](size_t i) { (void)store->raw_put_chunk(real[i], chunk); });
      store->wait_until_idle();
      settle();
      auto t1 = clock_type::now();
      size_t ok = 0;
      for (const auto& k : real)
        (void)store->raw_read_chunk(
            k, [&](const uint8_t* p, size_t n) { ok += sha256(p, n) == k ? 1 : 0; });
      raw_read.v.push_back(mb / seconds_since(t1));
      if (ok != real.size())
        std::cerr << "raw read-and-verify failed for " << real.size() - ok << " chunks\n";
      store->wait_until_idle();
      settle();
      auto t2 = clock_type::now();
      ok = 0;
      for (const auto& k : real)
        ok += store->read_chunk(k, [](const uint8_t*, size_t) {}).ok() ? 1 : 0;
      store_read.v.push_back(mb / seconds_since(t2));
      if (ok != real.size())
        std::cerr << "store read failed for " << real.size() - ok << " chunks\n";
    }
    // The real path: a 4-satellite cluster, R=2.
    const std::string cdir = dir + "/cluster-" + std::to_string(r);
    const std::string config = cdir + ".toml";
    write_loopback_constellation(config, {"bench-4", 4, "sat-1", "sat-1", cdir, 2});
    LocalCluster cluster(binary, config, load_constellation(config));
    cluster.start(30s);
    settle();
    auto t0 = clock_type::now();
    long rss = 0;
    int st = run_cli(binary, {"ingest", "--config", config, file, "--dataset", "bench"}, &rss);
    ingest.v.push_back(mb / seconds_since(t0));
    client_rss_kib = std::max(client_rss_kib, rss);
    if (describe_wait_status(st) != "exit 0")
      std::cerr << "ingest failed: " << describe_wait_status(st) << "\n";
    settle();
    auto t1 = clock_type::now();
    st = run_cli(binary, {"cat", "--config", config, "--dataset", "bench"});
    cat.v.push_back(mb / seconds_since(t1));
    if (describe_wait_status(st) != "exit 0")
      std::cerr << "cat failed: " << describe_wait_status(st) << "\n";
    cluster.stop(10s);
  }
  nlohmann::json out = {
      {"benchmark", "data_path"},
      {"file_mib", mib},
      {"satellites", 4},
      {"replicas", 2},
      {"chunk_bytes", 1 << 20},
      {"raw_put_mb_s", raw_put.json()},
      {"store_put_mb_s", store_put.json()},
      {"ingest_mb_s", ingest.json()},
      {"ingest_over_raw_put", ingest.median() / raw_put.median()},
      {"ingest_over_store_put", ingest.median() / store_put.median()},
      {"raw_read_verify_mb_s", raw_read.json()},
      {"store_read_mb_s", store_read.json()},
      {"cat_mb_s", cat.json()},
      {"cat_over_raw_read", cat.median() / raw_read.median()},
      {"cat_over_store_read", cat.median() / store_read.median()},
      {"ingest_client_peak_rss_mib", static_cast<double>(client_rss_kib) / 1024.0},
  };
  std::cout << out.dump(2) << std::endl;
  std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
