// Localhost-cluster integration tests: real `orbitrain node` processes on
// free 127.0.0.1 ports. A ground station remote-spawns actors on them and
// exchanges Cap'n Proto envelopes; a satellite killed with SIGKILL is
// reported unreachable within 5 s while the others stay up; nodes stop
// cleanly with remotely spawned actors still alive; `orbitrain up` leaves no
// process behind. Every process is stopped by the fixtures, even on failure.
#include "actors/ground.hpp"
#include "core/local_cluster.hpp"
#include "core/process.hpp"
#include "schemas/codec.hpp"
#include "storage/sha256.hpp"
#include "tests/test_support.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace orbitrain;
using orbitrain::testing::slurp;
using TempDir = orbitrain::testing::TempDir;
using namespace std::chrono_literals;

namespace {

const std::string binary = ORBITRAIN_BINARY;

/// A temporary directory removed with its content at scope exit.
std::string write_config(const TempDir& dir, int satellites) {
  std::string path = dir.path + "/cluster.toml";
  write_loopback_constellation(path, {"test-" + std::to_string(satellites), satellites, "sat-1",
                                      "sat-1", dir.path + "/data", std::min(2, satellites)});
  return path;
}

/// Waits (without polling loops) until process `pid`, not our child, is gone.
bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0)
    return errno == ESRCH; // already gone
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  ::close(fd);
  return r == 1;
}

/// Accepts TCP connections on 127.0.0.1:port and never says a word.
class SilentPeer {
public:
  explicit SilentPeer(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("cannot listen on port " + std::to_string(port));
    // The kernel completes handshakes from the backlog without accept().
  }
  ~SilentPeer() { ::close(fd_); }

private:
  int fd_ = -1;
};

class Cluster3 : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = write_config(dir_, 3);
    constellation_ = load_constellation(path_);
    cluster_ = std::make_unique<LocalCluster>(binary, path_, constellation_);
    cluster_->start(30s);
  }

  TempDir dir_;
  std::string path_;
  Constellation constellation_;
  std::unique_ptr<LocalCluster> cluster_;
};

} // namespace

TEST_F(Cluster3, RemoteSpawnExchangeAndUnreachableAfterSigkill) {
  GroundStation ground(constellation_);
  // Remote-spawn a probe on every satellite and exchange envelopes with it.
  std::vector<caf::actor> probes;
  for (const auto& sat : constellation_.satellites) {
    auto probe = ground.spawn_on(sat, "probe", 5s);
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    auto reply = ground.ask(*probe, msg::ProbeRequest{7}, 5s);
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    EXPECT_EQ(reply->sender, sat.id);
    const auto& st = std::get<msg::NodeStatus>(reply->body);
    EXPECT_EQ(st.node_id, sat.id);
    EXPECT_EQ(st.nonce, 7u);
    EXPECT_EQ(static_cast<pid_t>(st.pid), cluster_->find(sat.id)->process.pid());
    EXPECT_GE(st.supervised_actors, 1u);
    EXPECT_GT(st.rss_bytes, 0u);
    probes.push_back(*probe);
  }

  // Kill one satellite the hard way.
  auto* victim = cluster_->find("sat-2");
  victim->process.signal(SIGKILL);
  ASSERT_TRUE(victim->process.wait_for(5s));

  const auto t0 = std::chrono::steady_clock::now();
  auto status = ground.probe_all(3s);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(elapsed, 5s);
  ASSERT_EQ(status.size(), 3u);
  EXPECT_TRUE(status[0].up) << status[0].error;
  EXPECT_FALSE(status[1].up);
  EXPECT_FALSE(status[1].error.empty());
  EXPECT_TRUE(status[2].up) << status[2].error;

  // The CLI says the same, in JSON, and exits 1 because one is unreachable.
  auto cli = Child::spawn({binary, "status", "--config", path_, "--json", "--timeout", "3s"});
  std::string out;
  while (auto line = cli.read_line(10s))
    out += *line + "\n";
  auto st = cli.wait_for(10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(describe_wait_status(*st), "exit 1");
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["satellites"][0]["state"], "up");
  EXPECT_EQ(j["satellites"][1]["state"], "unreachable");
  EXPECT_EQ(j["satellites"][2]["state"], "up");
  EXPECT_GT(j["satellites"][0]["uptime_ms"].get<uint64_t>(), 0u);

  // The survivors stop cleanly although remotely spawned probes still live.
  for (const char* id : {"sat-1", "sat-3"}) {
    int code = cluster_->find(id)->process.stop(15s);
    EXPECT_EQ(describe_wait_status(code), "exit 0") << id;
  }
}

TEST_F(Cluster3, MalformedMessageGetsErrorReplyAndNodeSurvives) {
  GroundStation ground(constellation_);
  const auto& sat = constellation_.satellites[0];
  auto probe = ground.spawn_on(sat, "probe", 5s);
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  msg::Bytes junk(64, 0xab);
  auto reply = ground.ask_raw(*probe, junk, 5s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  const auto& err = std::get<msg::ErrorReply>(reply->body);
  EXPECT_EQ(err.code, "malformed_message");
  EXPECT_EQ(err.in_reply_to, "unknown");
  // A valid message of a kind the probe does not serve.
  auto wrong = ground.ask(*probe, msg::LoadReport{"ground", 0, 0, 0, 0, 0, 0, 0}, 5s);
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(std::get<msg::ErrorReply>(wrong->body).in_reply_to, "loadReport");
  // Still alive and answering.
  auto ok = ground.ask(*probe, msg::ProbeRequest{1}, 5s);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(std::get<msg::NodeStatus>(ok->body).node_id, sat.id);
  // The node logged the bad message with its kind.
  int code = cluster_->find(sat.id)->process.stop(15s);
  EXPECT_EQ(describe_wait_status(code), "exit 0");
  std::string log;
  for (const auto& line : cluster_->find(sat.id)->process.drain_lines())
    log += line + "\n";
  EXPECT_NE(log.find("malformed message for probe"), std::string::npos) << log;
  EXPECT_NE(log.find("unexpected loadReport message"), std::string::npos) << log;
}

TEST_F(Cluster3, ChunkDamagedOnTheWayIsRefusedAndNotStored) {
  // A dataChunk whose bytes no longer match the CRC32C its sender wrote is
  // answered with a "corrupt" error naming the chunk, nothing is stored, and
  // the same chunk intact is then stored.
  GroundStation ground(constellation_);
  const auto& sat = constellation_.satellites[1];
  auto store = ground.spawn_on(sat, "store", 5s);
  ASSERT_TRUE(store.ok()) << store.error().message;
  std::vector<uint8_t> data(100000);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i * 7 + i / 251);
  msg::Envelope e;
  e.sender = "ground";
  e.body = msg::DataChunk{"d", 3, sha256(data.data(), data.size()), {}};
  auto good = msg::encode_chunk(e, msg::ByteView{data.data(), data.size()});
  ASSERT_TRUE(good.ok());
  ASSERT_GT(good->size(), data.size());
  auto damaged = *good;
  const size_t at = damaged.size() - 5000; // inside the data, near its end
  damaged.at(at) = static_cast<uint8_t>(damaged.at(at) ^ 0x04);
  auto refused = ground.ask_raw(*store, damaged, 5s);
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  const auto& err = std::get<msg::ErrorReply>(refused->body);
  EXPECT_EQ(err.code, "corrupt");
  EXPECT_NE(err.message.find("CRC32C"), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("chunk 3 of 'd'"), std::string::npos) << err.message;
  msg::ChunkQuery q;
  q.hashes.push_back(std::get<msg::DataChunk>(e.body).sha256);
  auto absent = ground.ask(*store, q, 5s);
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(std::get<msg::ChunkPresence>(absent->body).present, std::vector<bool>{false});
  auto stored = ground.ask_raw(*store, *good, 5s);
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  EXPECT_TRUE(std::get<msg::ChunkAck>(stored->body).stored);
  auto present = ground.ask(*store, q, 5s);
  ASSERT_TRUE(present.ok());
  EXPECT_EQ(std::get<msg::ChunkPresence>(present->body).present, std::vector<bool>{true});
}

TEST_F(Cluster3, UnknownActorTypeAndSecondNodeOnSamePort) {
  GroundStation ground(constellation_);
  auto bad = ground.spawn_on(constellation_.satellites[0], "no-such-actor", 5s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("no-such-actor"), std::string::npos);

  auto twin = Child::spawn({binary, "node", "--config", path_, "--node", "sat-1"});
  std::vector<std::string> lines;
  while (auto l = twin.read_line(10s))
    lines.push_back(*l);
  auto st = twin.wait_for(10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(describe_wait_status(*st), "exit 2");
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("cannot listen on " + constellation_.satellites[0].address()),
            std::string::npos)
      << lines.back();
}

TEST(Cli, NodeRejectsUnknownSatelliteAndBadConfig) {
  TempDir dir;
  auto path = write_config(dir, 2);
  auto node = Child::spawn({binary, "node", "--config", path, "--node", "sat-9"});
  auto line = node.read_line(10s);
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("no satellite 'sat-9'"), std::string::npos) << *line;
  EXPECT_EQ(describe_wait_status(*node.wait_for(10s)), "exit 2");

  std::string bad = dir.path + "/bad.toml";
  std::ofstream(bad)
      << "name = \"x\"\n[[satellite]]\nid = \"a\"\nhost = \"127.0.0.1\"\nport = 99999\n"
      << "[job]\nscheduler = \"a\"\nparameter_server = \"a\"\n";
  auto status = Child::spawn({binary, "status", "--config", bad});
  auto err = status.read_line(10s);
  ASSERT_TRUE(err);
  EXPECT_EQ(*err, "error: " + bad + ":5: satellite[1].port: 99999 is out of range 1..65535");
  EXPECT_EQ(describe_wait_status(*status.wait_for(10s)), "exit 2");
}

TEST(Cli, StatusNeverHangsOnSilentPeer) {
  // A socket that accepts TCP connections but never speaks: status must give
  // up within its timeout.
  TempDir dir;
  auto path = write_config(dir, 1);
  auto c = load_constellation(path);
  SilentPeer peer(c.satellites[0].port);
  const auto t0 = std::chrono::steady_clock::now();
  GroundStation ground(c);
  auto probes = ground.probe_all(2s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_FALSE(probes[0].up);
}

TEST(Cli, UpStartsAllAndLeavesNoProcessBehind) {
  TempDir dir;
  auto path = write_config(dir, 3);
  auto up = Child::spawn({binary, "up", "--config", path});
  ASSERT_TRUE(up.wait_for_line("is up", 30s));
  ASSERT_TRUE(up.wait_for_line("SATELLITE", 5s));
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    auto row = up.read_line(5s);
    ASSERT_TRUE(row);
    pids.push_back(std::stoi(row->substr(row->find_last_of(' ') + 1)));
  }
  for (pid_t p : pids)
    EXPECT_EQ(::kill(p, 0), 0);
  // The constellation answers.
  auto status = Child::spawn({binary, "status", "--config", path});
  EXPECT_EQ(describe_wait_status(*status.wait_for(15s)), "exit 0");

  up.signal(SIGTERM);
  auto st = up.wait_for(30s);
  ASSERT_TRUE(st);
  EXPECT_EQ(describe_wait_status(*st), "exit 0");
  for (pid_t p : pids)
    EXPECT_TRUE(wait_gone(p, 5s)) << "satellite pid " << p << " outlived `up`";
}

TEST(Cli, UpKilledHardTakesItsSatellitesWithIt) {
  TempDir dir;
  auto path = write_config(dir, 2);
  auto up = Child::spawn({binary, "up", "--config", path});
  ASSERT_TRUE(up.wait_for_line("SATELLITE", 30s));
  std::vector<pid_t> pids;
  for (int i = 0; i < 2; ++i) {
    auto row = up.read_line(5s);
    ASSERT_TRUE(row);
    pids.push_back(std::stoi(row->substr(row->find_last_of(' ') + 1)));
  }
  up.signal(SIGKILL);
  ASSERT_TRUE(up.wait_for(10s));
  for (pid_t p : pids)
    EXPECT_TRUE(wait_gone(p, 15s)) << "satellite pid " << p << " was orphaned";
}
