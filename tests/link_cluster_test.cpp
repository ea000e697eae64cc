// The link layer on a localhost cluster: real `orbitrain node` processes on
// 127.0.0.1 with an orbit model whose geometry is fixed in time, so the
// expected delays are closed forms computed here, not by the library:
//
//   one circular orbit at 2000 km with 10 satellites (Walker 53:10/1/0), no
//   J2: in-plane neighbours are 36 degrees apart, a constant chord of
//   2 (R + h) sin 18 deg = 5178 km, 17.27 ms of light time per hop.
//   sat-1, sat-2, sat-3 hold slots 0, 1, 2: one hop from sat-1 to sat-2,
//   two to sat-3 (the other way round the ring is eight).
//
// A "link_test" actor on a satellite sends through its node's link layer
// (link_send) to one on another satellite, which hands what it receives to
// this test. Measured: the test's send to delivery at the test, which adds
// two loopback hops (well under a millisecond) to the link's delay.
// A partition is forced in the link layer (link_down): messages are held,
// counted in the node's status, and delivered in order when it is lifted;
// beyond [links] queue_limit_mib a message is refused with an ErrorReply.
// A chunk fetched from another satellite's store (fetch_chunk, as a worker
// does) takes the route's delay both ways, and its reply is held by the
// store's satellite while that one has no route back.
// The ground link: a status probe, and the data commands, wait until their
// ground station has a route to the satellite (time scale 60, `start`
// placed to open one a few seconds on).
#include "actors/ground.hpp"
#include "actors/ground_data.hpp"
#include "actors/wire_message.hpp"
#include "core/local_cluster.hpp"
#include "orbit/model.hpp"
#include "storage/sha256.hpp"
#include "tests/test_support.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <cmath>
#include <fstream>
#include <gtest/gtest.h>

using namespace orbitrain;
using TempDir = orbitrain::testing::TempDir;
using namespace std::chrono_literals;

namespace {

const std::string binary = ORBITRAIN_BINARY;
constexpr double c_m_s = 299792458.0;
constexpr double earth_radius_m = 6378137.0;
const double hop_s = 2 * (earth_radius_m + 2000e3) * std::sin(M_PI / 10) / c_m_s;
constexpr double isl_bps = 100e6;

class LinkCluster : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = dir_.path + "/ring.toml";
    write_loopback_constellation(path_, {"ring-test", 3, "sat-1", "sat-1", dir_.path + "/data", 2});
    {
      std::ofstream f(path_, std::ios::app);
      f << "\n[orbit]\nwalker = \"53:10/1/0\"\naltitude_km = 2000\ntime_scale = 1\n"
           "[links]\nmax_range_km = 8000\nisl_bandwidth_mbps = 100\nqueue_limit_mib = 1\n";
    }
    constellation_ = load_constellation(path_);
    cluster_ = std::make_unique<LocalCluster>(binary, path_, constellation_);
    cluster_->start(30s);
    ground_ = std::make_unique<GroundStation>(constellation_);
    for (const auto& s : constellation_.satellites) {
      auto a = ground_->spawn_on(s, "link_test", 10s);
      ASSERT_TRUE(a.ok()) << a.error().message;
      relays_.push_back(*a);
    }
    sink_ = std::make_unique<caf::scoped_actor>(ground_->system());
    // sat-1 talks to the others over BASP; everything any relay receives
    // comes to this test.
    for (size_t i = 1; i < relays_.size(); ++i) {
      const auto& s = constellation_.satellites[i];
      bool ok = false;
      (*sink_)
          ->request(relays_[0], 10s, peer_atom_v, s.host, s.port)
          .receive([&](bool r) { ok = r; }, [](caf::error&) {});
      ASSERT_TRUE(ok) << "sat-1 cannot connect to " << s.id;
    }
    for (auto& r : relays_)
      (*sink_)->send(r, sink_atom_v, caf::actor_cast<caf::actor>(*sink_));
  }
  void TearDown() override {
    sink_.reset();
    ground_.reset();
    if (cluster_)
      cluster_->stop(5s);
  }

  // Sends `w` from sat-1's relay to satellite `to` (1 or 2) through the link layer.
  void send(size_t to, wire w) {
    (*sink_)->send(relays_[0], relay_atom_v, relays_[to], constellation_.satellites[to].id,
                   std::move(w));
  }
  // The next wire that reaches the test, or nullopt after `timeout`.
  std::optional<msg::Envelope> next(std::chrono::milliseconds timeout) {
    std::optional<msg::Envelope> out;
    (*sink_)->receive(
        [&](wire& w) {
          auto e = open_wire(w);
          if (e)
            out = std::move(*e);
        },
        caf::after(timeout) >> [] {});
    return out;
  }
  msg::NodeStatus status_of(size_t i) {
    auto probes = ground_->probe_all(10s);
    return probes.at(i).status;
  }
  // Forces the route from satellite `from` (sat-1 by default) to satellite
  // `to` down or back up.
  bool force(size_t to, bool down, size_t from = 0) {
    bool ok = false;
    (*sink_)
        ->request(relays_[from], 10s, link_down_atom_v, constellation_.satellites[to].id, down)
        .receive([&](bool r) { ok = r; }, [](caf::error&) {});
    return ok;
  }

  TempDir dir_{"link"};
  std::string path_;
  Constellation constellation_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<GroundStation> ground_;
  std::vector<caf::actor> relays_;
  std::unique_ptr<caf::scoped_actor> sink_;
};

wire payload(uint64_t nonce, size_t padding) {
  // A chunk message pads the envelope to the size the test wants.
  msg::DataChunk c;
  c.dataset = "link-test";
  c.index = nonce;
  c.data.assign(padding, 0x5a);
  return make_wire("test", std::move(c));
}

} // namespace

TEST_F(LinkCluster, DeliveryDelayTracksTheModelsLatency) {
  auto st = status_of(0);
  ASSERT_TRUE(st.has_orbit);
  EXPECT_NEAR(st.alt_km, 2000, 30); // the ellipsoid's flattening moves it a little
  EXPECT_EQ(st.links_up, 2u);       // both in-plane neighbours

  struct Case {
    size_t to;
    int hops;
    size_t padding;
  };
  for (const Case c : {Case{1, 1, 1000}, Case{2, 2, 1000}, Case{2, 2, 125000}}) {
    std::vector<double> ms;
    size_t bytes = 0;
    for (uint64_t i = 0; i < 7; ++i) {
      auto w = payload(i, c.padding);
      bytes = w.bytes.size();
      const auto t0 = std::chrono::steady_clock::now();
      send(c.to, std::move(w));
      auto e = next(5s);
      const auto t1 = std::chrono::steady_clock::now();
      ASSERT_TRUE(e) << "message " << i << " to " << constellation_.satellites[c.to].id
                     << " never arrived";
      ASSERT_EQ(std::get<msg::DataChunk>(e->body).index, i);
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const double measured = ms[ms.size() / 2];
    // Cut-through: light time of every hop plus size / bandwidth once.
    const double expected = 1e3 * (c.hops * hop_s + bytes * 8.0 / isl_bps);
    std::printf(
        "%d hop(s), %zu bytes: model %.2f ms, measured median %.2f ms (min %.2f, max %.2f)\n",
        c.hops, bytes, expected, measured, ms.front(), ms.back());
    EXPECT_GE(measured, expected - 0.5);
    EXPECT_LE(measured, expected + 8.0);
  }
}

TEST_F(LinkCluster, PartitionHoldsMessagesAndDeliversThemInOrder) {
  ASSERT_TRUE(force(2, true));
  for (uint64_t i = 0; i < 20; ++i)
    send(2, payload(i, 100));
  // Nothing passes while there is no route (the model's delay is 35 ms).
  EXPECT_FALSE(next(500ms)) << "a message passed a partitioned link";
  auto st = status_of(0);
  EXPECT_EQ(st.link_held, 20u);
  EXPECT_EQ(st.link_dropped, 0u);
  ASSERT_TRUE(force(2, false));
  for (uint64_t i = 0; i < 20; ++i) {
    auto e = next(5s);
    ASSERT_TRUE(e) << "message " << i << " lost";
    EXPECT_EQ(std::get<msg::DataChunk>(e->body).index, i) << "out of order";
  }
  EXPECT_FALSE(next(100ms)) << "a message arrived twice";
  st = status_of(0);
  EXPECT_EQ(st.link_held, 0u);
  EXPECT_GE(st.link_delivered, 20u);
}

// A worker reads windows held elsewhere from a peer's store (fetch_chunk):
// the request leaves through its satellite's link layer, the store answers
// through its own, so a chunk of 125 KB two hops away arrives after twice
// the light time of the route plus its transmission time, and not at all
// while the store's satellite has no route back.
TEST_F(LinkCluster, ChunkFetchesPassTheLinkLayerBothWays) {
  auto store = ground_->spawn_on(constellation_.satellites[2], "store", 10s);
  ASSERT_TRUE(store.ok()) << store.error().message;
  msg::DataChunk chunk;
  chunk.dataset = "link-test";
  chunk.data.resize(125000);
  for (size_t i = 0; i < chunk.data.size(); ++i)
    chunk.data[i] = static_cast<uint8_t>(i * 7 + 3);
  chunk.sha256 = sha256(chunk.data.data(), chunk.data.size());
  auto ack = ground_->ask(*store, chunk, 10s);
  ASSERT_TRUE(ack.ok() && std::holds_alternative<msg::ChunkAck>(ack->body));
  const wire request = make_wire("test", msg::ChunkRequest{chunk.sha256});
  const size_t reply_bytes = make_chunk_wire("sat-3", {}, 0, chunk.sha256,
                                             msg::ByteView{chunk.data.data(), chunk.data.size()})
                                 .bytes.size();
  auto fetch = [&] {
    (*sink_)->send(relays_[0], fetch_atom_v, *store, std::string("sat-3"), request);
  };
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fetch();
    auto e = next(5s);
    const auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(e) << "fetch " << i << " never answered";
    auto* got = std::get_if<msg::DataChunk>(&e->body);
    ASSERT_TRUE(got) << "expected a chunk, got " << msg::kind_name(e->body);
    EXPECT_TRUE(got->data == chunk.data);
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double measured = ms[ms.size() / 2];
  // Two hops each way, the request's and the reply's transmission.
  const double expected = 1e3 * (4 * hop_s + (request.bytes.size() + reply_bytes) * 8.0 / isl_bps);
  std::printf("chunk fetch over 2 hops, %zu bytes back: model %.2f ms, measured median %.2f ms "
              "(min %.2f, max %.2f)\n",
              reply_bytes, expected, measured, ms.front(), ms.back());
  EXPECT_GE(measured, expected - 0.5);
  EXPECT_LE(measured, expected + 12.0);
  // The replies left through sat-3's link layer.
  auto st = status_of(2);
  EXPECT_GE(st.link_delivered, 5u);
  EXPECT_GE(st.link_bytes, 5 * reply_bytes);
  // With no route from sat-3 back to sat-1 the reply waits there.
  ASSERT_TRUE(force(0, true, 2));
  fetch();
  EXPECT_FALSE(next(500ms)) << "a reply passed a partitioned link";
  EXPECT_EQ(status_of(2).link_held, 1u);
  ASSERT_TRUE(force(0, false, 2));
  auto late = next(5s);
  ASSERT_TRUE(late) << "the held reply was lost";
  EXPECT_TRUE(std::holds_alternative<msg::DataChunk>(late->body)) << msg::kind_name(late->body);
}

TEST_F(LinkCluster, OverflowIsReportedNotLost) {
  // queue_limit_mib = 1: two messages of 400 KB wait, the third is refused.
  ASSERT_TRUE(force(2, true));
  for (uint64_t i = 0; i < 3; ++i)
    send(2, payload(i, 400000));
  auto e = next(5s);
  ASSERT_TRUE(e);
  auto* err = std::get_if<msg::ErrorReply>(&e->body);
  ASSERT_TRUE(err) << "expected an ErrorReply, got " << msg::kind_name(e->body);
  EXPECT_EQ(err->code, "link_overflow");
  EXPECT_EQ(e->sender, "sat-1");
  auto st = status_of(0);
  EXPECT_EQ(st.link_held, 2u);
  EXPECT_EQ(st.link_dropped, 1u);
  ASSERT_TRUE(force(2, false));
  for (uint64_t i = 0; i < 2; ++i) {
    auto d = next(5s);
    ASSERT_TRUE(d);
    EXPECT_EQ(std::get<msg::DataChunk>(d->body).index, i);
  }
}

namespace {

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Writes to `path` a ring of 3 satellites (time scale 60) whose ground
// station "north" gets a route to sat-1 `lead` - 1 to `lead` seconds of
// wall time from now, after none, and keeps it for at least `min_open`
// simulated seconds; returns the wall time (Unix s) it opens, or -1 when no
// such window is found. The ring is always connected, so the route to every
// satellite opens with it.
double write_ground_file(const std::string& dir, const std::string& path, double lead,
                         double min_open) {
  const std::string orbit_text = "\n[orbit]\nwalker = \"53:10/1/0\"\naltitude_km = 2000\n"
                                 "time_scale = 60\nepoch = \"2026-03-20T00:00:00Z\"\n"
                                 "[links]\nmax_range_km = 8000\n"
                                 "[[ground_station]]\nname = \"north\"\nlat = 40\nlon = 15.4\n";
  write_loopback_constellation(path, {"ground-test", 3, "sat-1", "sat-1", dir + "/data", 2});
  std::ofstream(path, std::ios::app) << orbit_text;
  // When does the route from the station to sat-1 (slot 0) open after being
  // closed for the `lead` (and two minutes more), to stay open for
  // `min_open` or more? Simulated seconds since the epoch.
  orbit::ConstellationModel model(orbit::model_spec(load_constellation(path)));
  double open_at = -1, closed_from = -1, opened = -1;
  bool was_open = true;
  for (double t = 0; t < 86400 && open_at < 0; t += 2) {
    model.update(t);
    const bool open = model.ground_route(0, 0).has_value();
    if (!open && was_open)
      closed_from = t;
    if (open && !was_open)
      opened = closed_from >= 0 && t - closed_from >= 60 * lead + 120 ? t : -1;
    if (open && opened >= 0 && t - opened >= min_open)
      open_at = opened;
    was_open = open;
  }
  if (open_at < 0)
    return -1;
  const double start = std::floor(wall_now() + lead - open_at / 60);
  // `start` belongs to [orbit]: rewrite the file with it.
  write_loopback_constellation(path, {"ground-test", 3, "sat-1", "sat-1", dir + "/data", 2});
  std::string text = orbit_text;
  text.replace(text.find("time_scale"), 0, "start = \"" + format_utc_time(start) + "\"\n");
  std::ofstream(path, std::ios::app) << text;
  return start + open_at / 60;
}

} // namespace

// The ground station reaches a satellite only through a route from a
// satellite it sees: a probe waits for the route to open (time scale 60,
// the file's `start` placed so that it opens ~8 s after the test begins).
TEST(GroundLink, ProbesWaitForContact) {
  TempDir dir("ground");
  const std::string path = dir.path + "/ring.toml";
  const double open_wall = write_ground_file(dir.path, path, 8, 0); // 7-8 s from now
  ASSERT_GT(open_wall, 0) << "the station never sees the constellation";
  auto c = load_constellation(path);
  ASSERT_TRUE(c.orbit && c.orbit->start_unix);
  LocalCluster cluster(binary, path, c);
  cluster.start(30s);
  GroundStation ground(c);
  EXPECT_EQ(ground.ground_station(), "north");
  ASSERT_LT(wall_now() + 2.5, open_wall) << "the cluster took too long to start";
  auto early = ground.probe_all(2s);
  EXPECT_FALSE(early[0].up);
  EXPECT_NE(early[0].error.find("out of contact"), std::string::npos) << early[0].error;
  auto late = ground.probe_all(20s);
  const double done = wall_now();
  ASSERT_TRUE(late[0].up) << late[0].error;
  EXPECT_GE(done, open_wall - 0.05) << "a probe passed before the route opened";
  EXPECT_LT(done, open_wall + 3);
  // Directly ("none"), no waiting at all.
  ASSERT_TRUE(ground.use_ground_station("none").ok());
  EXPECT_TRUE(ground.probe_all(5s)[0].up);
  cluster.stop(5s);
}

// The data commands obey the ground link like `status`: out of contact
// beyond the timeout they say so; within it, they wait for the route to
// open (no message passes before) and work through it.
TEST(GroundLink, DataCommandsWaitForContact) {
  TempDir dir("ground-data");
  const std::string path = dir.path + "/ring.toml";
  const double open_wall = write_ground_file(dir.path, path, 10, 300); // 9-10 s from now, for 5 s
  ASSERT_GT(open_wall, 0) << "no contact window of 5 minutes after 4 without";
  auto c = load_constellation(path);
  LocalCluster cluster(binary, path, c);
  cluster.start(30s);
  GroundStation ground(c);
  ASSERT_EQ(ground.ground_station(), "north");
  ASSERT_LT(wall_now() + 4, open_wall) << "the cluster took too long to start";
  const std::string data = dir.path + "/data.bin";
  std::string text;
  for (int i = 0; text.size() < 200000; ++i)
    text += "chunk " + std::to_string(i) + " of the ground link test\n";
  std::ofstream(data, std::ios::binary) << text;
  // Out of contact beyond the timeout: every satellite says so.
  auto s = survey(ground, 1s);
  ASSERT_EQ(s.satellites.size(), 3u);
  for (const auto& h : s.satellites) {
    EXPECT_FALSE(h.up) << h.id;
    EXPECT_NE(h.error.find("out of contact"), std::string::npos) << h.error;
  }
  IngestOptions o;
  o.file = data;
  o.dataset = "text";
  o.chunk_size = 16 << 10;
  o.timeout = 2s;
  auto early = ingest(ground, o);
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().message.find("out of contact"), std::string::npos)
      << early.error().message;
  ASSERT_LT(wall_now(), open_wall) << "the route opened during the early attempts";
  // Within the timeout: it waits for the route.
  o.timeout = 20s;
  auto r = ingest(ground, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(wall_now(), open_wall - 0.05) << "the ingest finished before the route opened";
  EXPECT_EQ(r->copies_sent, 2 * r->chunks);
  const std::string back = dir.path + "/back.bin";
  std::FILE* out = std::fopen(back.c_str(), "wb");
  ASSERT_TRUE(out);
  auto cat = cat_dataset(ground, "text", out, 20s);
  std::fclose(out);
  ASSERT_TRUE(cat.ok()) << cat.error().message;
  EXPECT_TRUE(orbitrain::testing::slurp(back) == text);
  cluster.stop(5s);
}
