// Implementation of commands.hpp.
#include "apps/commands.hpp"

#include "actors/ground.hpp"
#include "actors/ground_data.hpp"
#include "actors/ground_train.hpp"
#include "actors/node.hpp"
#include "apps/cli_util.hpp"
#include "apps/progress.hpp"
#include "apps/status_view.hpp"
#include "compute/model.hpp"
#include "compute/tokenizer.hpp"
#include "compute/trainer.hpp"
#include "core/config.hpp"
#include "core/local_cluster.hpp"
#include "core/log.hpp"
#include "core/process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace orbitrain {

namespace {

using namespace std::chrono_literals;

// ---- node -------------------------------------------------------------------

void add_node(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("node", "Run one satellite of a constellation (until SIGTERM/SIGINT)");
  auto config = std::make_shared<std::string>();
  auto node = std::make_shared<std::string>();
  cmd->add_option("--config,-c", *config, "Constellation file")->required();
  cmd->add_option("--node,-n", *node, "Satellite id in that file")->required();
  cmd->callback([config, node] {
    auto c = load_or_fail(*config);
    int rc = run_satellite(c, *node);
    if (rc != 0)
      throw CLI::RuntimeError(rc);
  });
}

// ---- up ---------------------------------------------------------------------

std::string cluster_table(LocalCluster& cluster) {
  std::string out = fmt::format("{:<12} {:<22} {:>8}\n", "SATELLITE", "ADDRESS", "PID");
  for (auto& n : cluster.nodes())
    out += fmt::format("{:<12} {:<22} {:>8}\n", n.id, n.address, n.process.pid());
  return out;
}

// Forwards the nodes' output and waits for SIGINT/SIGTERM or for every node
// to exit. Returns true when stopped by a signal.
bool supervise_until_signal(LocalCluster& cluster, int signal_fd) {
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({signal_fd, POLLIN, 0});
    std::vector<ClusterNode*> owners;
    for (auto& n : cluster.nodes()) {
      if (!n.process.running())
        continue;
      if (!n.process.output_closed()) {
        fds.push_back({n.process.output_fd(), POLLIN, 0});
        owners.push_back(&n);
      }
      fds.push_back({n.process.exit_fd(), POLLIN, 0});
      owners.push_back(&n);
    }
    if (owners.empty())
      return false;
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR)
      return false;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      ssize_t n = ::read(signal_fd, &info, sizeof info);
      (void)n;
      std::cout << "\nstopping the constellation ("
                << (info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM") << ")" << std::endl;
      return true;
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents)
        continue;
      ClusterNode* n = owners[i - 1];
      if (fds[i].fd == n->process.output_fd()) {
        for (const auto& line : n->process.drain_lines())
          std::cout << line << "\n";
        std::cout.flush();
      } else if (auto st = n->process.wait_for(0ms)) {
        for (const auto& line : n->process.drain_lines())
          std::cout << line << "\n";
        std::cout << "satellite " << n->id << " exited (" << describe_wait_status(*st) << ")"
                  << std::endl;
      }
    }
  }
}

void add_up(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "up", "Start every satellite of a constellation on this host; Ctrl-C stops them all");
  auto config = std::make_shared<std::string>();
  auto timeout = std::make_shared<std::string>("30s");
  cmd->add_option("--config,-c", *config, "Constellation file")->required();
  cmd->add_option("--timeout", *timeout, "How long to wait for the satellites to be ready")
      ->capture_default_str();
  cmd->callback([config, timeout] {
    auto c = load_or_fail(*config);
    auto ready_timeout = duration_or_fail(*timeout, "--timeout");
    // Take SIGINT/SIGTERM through a signalfd, before any child exists.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    int sfd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
    LocalCluster cluster(self_executable(), *config, c);
    try {
      cluster.start(ready_timeout);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      for (const auto& line : cluster.stop(5s))
        std::cerr << "  " << line << "\n";
      throw CLI::RuntimeError(1);
    }
    std::cout << "constellation " << c.name << " is up (" << c.satellites.size()
              << " satellites); Ctrl-C stops it\n"
              << cluster_table(cluster) << std::flush;
    bool by_signal = supervise_until_signal(cluster, sfd);
    for (const auto& line : cluster.stop(10s))
      std::cout << "  " << line << "\n";
    ::close(sfd);
    if (!by_signal)
      throw CLI::RuntimeError(1);
  });
}

// ---- status -----------------------------------------------------------------

void add_status(CLI::App& app) {
  auto* cmd = app.add_subcommand("status", "Probe every satellite of a constellation");
  auto config = std::make_shared<std::string>();
  auto timeout = std::make_shared<std::string>("3s");
  auto json = std::make_shared<bool>(false);
  auto station = std::make_shared<std::string>();
  cmd->add_option("--config,-c", *config, "Constellation file")->required();
  cmd->add_option("--timeout", *timeout, "Give up on a satellite after this long")
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Print JSON instead of a table");
  cmd->add_option("--ground-station", *station,
                  "With [orbit]: probe through this ground station, only in contact (default: "
                  "the file's first; none: directly)");
  cmd->callback([config, timeout, json, station] {
    auto c = load_or_fail(*config);
    auto t = duration_or_fail(*timeout, "--timeout");
    std::vector<SatelliteProbe> probes;
    {
      GroundStation ground(c);
      if (!station->empty())
        if (auto g = ground.use_ground_station(*station); !g)
          fail(g.error().message, 2);
      probes = ground.probe_all(t);
    }
    if (*json)
      std::cout << status_json(c.name, probes).dump(2) << std::endl;
    else
      std::cout << "constellation " << c.name << "\n" << status_table(probes) << std::flush;
    for (const auto& p : probes)
      if (!p.up)
        throw CLI::RuntimeError(1);
  });
}

// ---- demo -------------------------------------------------------------------

// About a megabyte of English that every Debian machine has: the common
// licenses, then packages' copyright files, in a fixed order.
std::string demo_corpus(size_t target) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const char* dir : {"/usr/share/common-licenses"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file())
        files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<fs::path> more;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/share/doc", ec)) {
    auto p = e.path() / "copyright";
    if (fs::is_regular_file(p, ec))
      more.push_back(p);
  }
  std::sort(more.begin(), more.end());
  files.insert(files.end(), more.begin(), more.end());
  std::string text;
  for (const auto& f : files) {
    if (text.size() >= target)
      break;
    std::ifstream in(f, std::ios::binary);
    text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    text += "\n";
  }
  return text;
}

struct DemoArgs {
  uint32_t steps = 1200;
  uint32_t satellites = 4;
  std::string write_corpus;
};

void add_demo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand(
      "demo", "Train a small model across a constellation of satellites on this host");
  cmd->add_option("--steps", a->steps, "Training steps")->capture_default_str();
  cmd->add_option("--satellites", a->satellites, "Satellites (2-8)")
      ->capture_default_str()
      ->check(CLI::Range(2, 8));
  cmd->add_option("--write-corpus", a->write_corpus,
                  "Only write the demo's training text to this file (for benchmarks)");
  cmd->callback([a] {
    if (!a->write_corpus.empty()) {
      std::ofstream out(a->write_corpus, std::ios::binary);
      out << demo_corpus(size_t{1} << 20);
      if (!out)
        fail("cannot write " + a->write_corpus);
      return;
    }
    char dir_template[] = "/tmp/orbitrain-demo-XXXXXX";
    if (!::mkdtemp(dir_template))
      fail("cannot create a temporary directory");
    const std::string dir = dir_template;
    struct Cleanup {
      std::string dir;
      ~Cleanup() { std::filesystem::remove_all(dir); }
    } cleanup{dir};
    const std::string path = dir + "/demo.toml";
    write_loopback_constellation(
        path, {"demo", static_cast<int>(a->satellites), "sat-1", "sat-2", dir + "/data", 2});
    auto c = load_or_fail(path);
    std::cout << "== 1. a constellation of " << a->satellites << " satellites on this host ("
              << path << ")\n";
    LocalCluster cluster(self_executable(), path, c);
    int rc = 0;
    try {
      cluster.start(30s);
      for (auto& n : cluster.nodes())
        std::cout << "   " << n.id << " ready on " << n.address << " (pid " << n.process.pid()
                  << ")\n";
      GroundStation ground(c);
      std::cout << "== 2. status: a probe actor spawned remotely on each satellite\n"
                << status_table(ground.probe_all(3s)) << std::flush;

      const std::string corpus = demo_corpus(size_t{1} << 20);
      const std::string data = dir + "/corpus.txt";
      std::ofstream(data, std::ios::binary) << corpus;
      std::cout << "== 3. ingest " << human_bytes(corpus.size())
                << " of English (Debian's license texts) in 64 KiB chunks, 2 copies each\n"
                << std::flush;
      IngestOptions io;
      io.file = data;
      io.dataset = "licenses";
      io.chunk_size = 64 << 10;
      ProgressBar bar("   ingest");
      auto in = ingest(ground, io, [&](uint64_t d, uint64_t t) { bar.update(d, t); });
      bar.finish();
      if (!in)
        throw std::runtime_error(in.error().message);
      auto survey_now = survey(ground, 5s);
      for (const auto& d : survey_now.datasets)
        for (const auto& [id, cb] : d.per_satellite)
          std::cout << fmt::format("   {:<8} holds {:>3} chunks ({})\n", id, cb.first,
                                   human_bytes(cb.second));

      std::cout << "== 4. train the baby GPT (4 layers, 128 wide) in sync mode: " << a->satellites
                << " workers, parameter server on sat-2, scheduler on sat-1\n"
                << std::flush;
      TrainJobOptions jo;
      jo.job_id = "demo";
      jo.dataset = "licenses";
      jo.model = "baby";
      jo.steps = a->steps;
      jo.micro_batch = 8;
      jo.micro_batches_per_step = a->satellites;
      jo.warmup = static_cast<int32_t>(std::max<uint32_t>(1, a->steps / 10));
      jo.eval_every = 100;
      const auto t0 = std::chrono::steady_clock::now();
      StepBar steps_bar;
      auto r = run_training(
          ground, jo,
          [&](const msg::StepDone& d) {
            const uint32_t done = d.step + 1;
            const double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            steps_bar.update(done, a->steps,
                             fmt::format("loss {:.3f} {:.0f} tok/s", d.loss,
                                         d.tokens * done / std::max(secs, 1e-9)));
            if (done == 1 || done % 25 == 0 || done == a->steps || d.val_loss) {
              steps_bar.clear();
              std::string tasks;
              for (auto t : d.tasks_per_worker)
                tasks += (tasks.empty() ? "" : "/") + std::to_string(t);
              std::cout << fmt::format("   step {:>4}/{}  loss {:.3f}{}  {:>6.0f} tok/s  tasks {}  "
                                       "ETA {:.0f}s\n",
                                       done, a->steps, d.loss,
                                       d.val_loss ? fmt::format("  val {:.3f}", *d.val_loss) : "",
                                       d.tokens * done / std::max(secs, 1e-9), tasks,
                                       secs / done * (a->steps - done))
                        << std::flush;
            }
          },
          nullptr);
      steps_bar.finish();
      if (!r)
        throw std::runtime_error(r.error().message);
      std::cout << "== 5. samples from the trained model\n";
      auto cfg = compute::GptConfig::from_json(nlohmann::json::parse(r->spec.model_config));
      compute::Gpt model(cfg);
      std::memcpy(model.params().data(), r->parameters.data(),
                  r->parameters.size() * sizeof(float));
      compute::Tokenizer tok(r->vocabulary);
      for (const char* prompt : {"The ", "This program is ", "You may "}) {
        auto ids = compute::generate(model, tok.encode(prompt), 160, 0.8f, 0, 42);
        std::string sample = tok.decode(ids);
        for (size_t pos = 0; (pos = sample.find('\n', pos)) != std::string::npos; pos += 4)
          sample.replace(pos, 1, "\n   ");
        std::cout << "   --- \"" << prompt << "\"\n   " << sample << "\n";
      }
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      rc = 1;
    }
    std::cout << "== 6. stopping the constellation\n";
    for (const auto& line : cluster.stop(10s)) {
      std::cout << "   " << line << "\n";
      if (line.find("exit 0") == std::string::npos)
        rc = 1;
    }
    std::cout << (rc == 0 ? "== demo finished\n" : "== demo FAILED\n");
    if (rc != 0)
      throw CLI::RuntimeError(rc);
  });
}

} // namespace

void add_cluster_commands(CLI::App& app) {
  add_node(app);
  add_up(app);
  add_status(app);
  add_demo(app);
}

} // namespace orbitrain
