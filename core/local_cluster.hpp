// A constellation's satellites run as child processes of this host: what
// `orbitrain up` and `orbitrain demo` do, and what the integration tests use.
// start() launches `orbitrain node --config FILE --node ID` for every
// satellite (or a chosen subset), waits for each one's readiness line, and
// fails with the satellite's own output if one exits or stays silent. The
// destructor stops whatever still runs (SIGTERM, then SIGKILL), so no node
// outlives its cluster.
#pragma once

#include "core/config.hpp"
#include "core/process.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace orbitrain {

struct ClusterNode {
  std::string id;
  std::string address;
  Child process;
  std::vector<std::string> output; // lines printed before readiness
};

/// What a loopback constellation file holds: satellites sat-1..sat-N on
/// ports of 127.0.0.1 that were free a moment ago.
struct LoopbackSpec {
  std::string name;
  int satellites = 3;
  std::string scheduler = "sat-1";
  std::string parameter_server = "sat-1";
  std::string storage_root;
  int replicas = 2;
};

/// Writes the constellation file for `spec` to `path`; throws
/// std::runtime_error naming the path if it cannot.
void write_loopback_constellation(const std::string& path, const LoopbackSpec& spec);

class LocalCluster {
public:
  /// `executable` is the orbitrain binary; `config_path` the constellation file.
  LocalCluster(std::string executable, std::string config_path, Constellation constellation);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  /// Starts the satellites with the given ids (all when empty) and waits at
  /// most `timeout` for every one to be ready. Throws std::runtime_error with
  /// the failing satellite's output.
  void start(std::chrono::milliseconds timeout, const std::vector<std::string>& ids = {});

  std::vector<ClusterNode>& nodes() { return nodes_; }
  ClusterNode* find(const std::string& id);

  /// Stops every running node (SIGTERM, `grace`, then SIGKILL); returns one
  /// line per node: "sat-1: exit 0".
  std::vector<std::string> stop(std::chrono::milliseconds grace);

private:
  std::string executable_;
  std::string config_path_;
  Constellation constellation_;
  std::vector<ClusterNode> nodes_;
};

} // namespace orbitrain
