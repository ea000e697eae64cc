// Implementation of local_cluster.hpp.
#include "core/local_cluster.hpp"

#include "core/log.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <set>
#include <stdexcept>

namespace orbitrain {

void write_loopback_constellation(const std::string& path, const LoopbackSpec& spec) {
  std::ofstream out(path);
  out << "# Satellites on free loopback ports.\nname = \"" << spec.name << "\"\n\n";
  // A port is free when picked, then released: the kernel may hand the same
  // one out again at the next pick, so the file's ports are kept distinct.
  std::set<uint16_t> used;
  for (int i = 1; i <= spec.satellites; ++i) {
    uint16_t port = pick_free_port();
    for (int tries = 0; used.count(port) && tries < 100; ++tries)
      port = pick_free_port();
    if (used.count(port))
      throw std::runtime_error("no distinct free loopback ports for " + path);
    used.insert(port);
    out << "[[satellite]]\nid = \"sat-" << i << "\"\nhost = \"127.0.0.1\"\nport = " << port
        << "\n\n";
  }
  out << "[job]\nscheduler = \"" << spec.scheduler << "\"\nparameter_server = \""
      << spec.parameter_server << "\"\n\n[storage]\nroot = \"" << spec.storage_root
      << "\"\nreplicas = " << spec.replicas << "\n";
  if (!out.flush())
    throw std::runtime_error("cannot write " + path);
}

LocalCluster::LocalCluster(std::string executable, std::string config_path, Constellation c)
    : executable_(std::move(executable)), config_path_(std::move(config_path)),
      constellation_(std::move(c)) {}

LocalCluster::~LocalCluster() {
  stop(std::chrono::seconds(10));
}

ClusterNode* LocalCluster::find(const std::string& id) {
  for (auto& n : nodes_)
    if (n.id == id)
      return &n;
  return nullptr;
}

void LocalCluster::start(std::chrono::milliseconds timeout, const std::vector<std::string>& ids) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<size_t> started;
  for (const auto& sat : constellation_.satellites) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), sat.id) == ids.end())
      continue;
    if (auto* existing = find(sat.id); existing && existing->process.running())
      throw std::runtime_error("satellite " + sat.id + " is already running");
    ClusterNode node;
    node.id = sat.id;
    node.address = sat.address();
    node.process = Child::spawn({executable_, "node", "--config", config_path_, "--node", sat.id});
    if (auto* existing = find(sat.id)) {
      *existing = std::move(node);
      started.push_back(static_cast<size_t>(existing - nodes_.data()));
    } else {
      nodes_.push_back(std::move(node));
      started.push_back(nodes_.size() - 1);
    }
  }
  // All start at once; wait for each readiness line in turn.
  for (size_t i : started) {
    auto& n = nodes_[i];
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0)
      left = std::chrono::milliseconds(0);
    auto ready = n.process.wait_for_line(std::string(ready_marker), left, &n.output);
    if (!ready) {
      std::string why;
      if (auto st = n.process.wait_for(std::chrono::milliseconds(200)))
        why = "it exited (" + describe_wait_status(*st) + ")";
      else
        why = "it did not report ready within " + std::to_string(timeout.count()) + " ms";
      for (auto& line : n.process.drain_lines())
        n.output.push_back(std::move(line));
      std::string out;
      for (const auto& line : n.output)
        out += "\n  " + line;
      throw std::runtime_error("satellite " + n.id + " (" + n.address + ") failed to start: " +
                               why + (out.empty() ? "" : "; its output:" + out));
    }
    n.output.push_back(*ready);
  }
}

std::vector<std::string> LocalCluster::stop(std::chrono::milliseconds grace) {
  std::vector<std::string> report;
  for (auto& n : nodes_)
    n.process.signal(SIGTERM);
  for (auto& n : nodes_) {
    if (n.process.pid() <= 0)
      continue;
    int st = n.process.stop(grace);
    std::string line = n.id + ": " + describe_wait_status(st);
    if (describe_wait_status(st) != "exit 0")
      for (const auto& out : n.process.drain_lines())
        line += "\n    | " + out;
    report.push_back(line);
  }
  return report;
}

} // namespace orbitrain
