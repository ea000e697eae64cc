// Implementation of commands.hpp.
#include "apps/commands.hpp"

#include "actors/ground.hpp"
#include "actors/node.hpp"
#include "apps/cli_util.hpp"
#include "apps/status_view.hpp"
#include "core/config.hpp"
#include "core/local_cluster.hpp"
#include "core/log.hpp"
#include "core/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
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
  cmd->add_option("--config,-c", *config, "Constellation file")->required();
  cmd->add_option("--timeout", *timeout, "Give up on a satellite after this long")
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Print JSON instead of a table");
  cmd->callback([config, timeout, json] {
    auto c = load_or_fail(*config);
    auto t = duration_or_fail(*timeout, "--timeout");
    std::vector<SatelliteProbe> probes;
    {
      GroundStation ground(c);
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

void add_demo(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "demo", "Start a 3-satellite constellation on this host, show its status, stop it");
  cmd->callback([] {
    // A constellation on free loopback ports, written where the nodes read it.
    char dir_template[] = "/tmp/orbitrain-demo-XXXXXX";
    if (!::mkdtemp(dir_template)) {
      std::cerr << "error: cannot create a temporary directory\n";
      throw CLI::RuntimeError(1);
    }
    const std::string dir = dir_template;
    const std::string path = dir + "/demo-3.toml";
    {
      std::ofstream out(path);
      out << "# Written by `orbitrain demo`: three satellites on free loopback ports.\n"
          << "name = \"demo-3\"\n\n";
      for (int i = 1; i <= 3; ++i)
        out << "[[satellite]]\nid = \"sat-" << i
            << "\"\nhost = \"127.0.0.1\"\nport = " << pick_free_port() << "\n\n";
      out << "[job]\nscheduler = \"sat-1\"\nparameter_server = \"sat-1\"\n\n"
          << "[storage]\nroot = \"" << dir << "/data\"\n";
    }
    auto c = load_or_fail(path);
    std::cout << "== starting constellation " << c.name << " (" << path << ")\n";
    LocalCluster cluster(self_executable(), path, c);
    int rc = 0;
    try {
      cluster.start(30s);
      for (auto& n : cluster.nodes())
        std::cout << "   " << n.id << " ready on " << n.address << " (pid " << n.process.pid()
                  << ")\n";
      std::cout << "== status (a probe actor remotely spawned on each satellite)\n" << std::flush;
      GroundStation ground(c);
      auto probes = ground.probe_all(3s);
      std::cout << status_table(probes);
      for (const auto& p : probes)
        if (!p.up)
          rc = 1;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      rc = 1;
    }
    std::cout << "== stopping\n";
    for (const auto& line : cluster.stop(10s)) {
      std::cout << "   " << line << "\n";
      if (line.find("exit 0") == std::string::npos)
        rc = 1;
    }
    std::remove(path.c_str());
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
