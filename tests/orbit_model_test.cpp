// The constellation model against numbers computed here, independently of
// the library: the Sun at an equinox and a solstice, the energy balance of an
// orbit from the closed-form sunlit fraction, contact windows of an
// equatorial orbit from the closed-form pass, routes on a ring of satellites
// counted by hand, all-pairs routing against Floyd-Warshall, the battery's
// depth-of-discharge query and the simulated clock.
#include "orbit/clock.hpp"
#include "orbit/energy.hpp"
#include "orbit/model.hpp"
#include "orbit/plan.hpp"
#include "tests/orbit_closed_forms.hpp"

#include <gtest/gtest.h>

using namespace orbitrain;
using namespace orbitrain::orbit;
using namespace orbitrain::testing::closed_form;

namespace {

// Independent constants.
constexpr double OMEGA_E = 7.2921159e-5, DEG = PI / 180;
// 2024-03-20T03:06:00Z, the March equinox, and 2024-06-20T20:51:00Z, the
// June solstice (published times, to the minute), as seconds since 1970.
constexpr double EQUINOX = 1710903960, SOLSTICE = 1718916660;

double angle_deg(const Vec3& a, const Vec3& b) {
  return std::acos(std::min(1.0, a.dot(b) / (a.norm() * b.norm()))) / DEG;
}

} // namespace

TEST(OrbitModel, SunAtEquinoxAndSolstice) {
  // At the March equinox the Sun crosses the equator at right ascension 0.
  EXPECT_LT(angle_deg(sun_direction(EQUINOX), {1, 0, 0}), 0.05);
  // At the June solstice: right ascension 90 degrees, declination 23.44.
  const double eps = 23.44 * DEG;
  EXPECT_LT(angle_deg(sun_direction(SOLSTICE), {0, std::cos(eps), std::sin(eps)}), 0.05);
  EXPECT_NEAR(sun_direction(SOLSTICE + 12345).norm(), 1, 1e-12);
}

TEST(OrbitEnergy, BalanceOverAnOrbitMatchesClosedForm) {
  const double h = 550e3, a = RE + h, T = closed_period(h);
  const PowerModel pm{120, 1000, 0.4, 20, 10};
  // Plane 0 of a 53-degree pattern has its node on the x axis; its normal is
  // (0, -sin i, cos i). The Sun's elevation over the plane (beta) decides
  // the shadowed fraction of a circular orbit in a cylindrical shadow.
  const Vec3 normal{0, -std::sin(53 * DEG), std::cos(53 * DEG)};
  for (double epoch : {EQUINOX, SOLSTICE}) {
    ModelSpec spec;
    spec.walker = pattern(53, 24, 4, 1, h);
    spec.epoch_unix = epoch;
    ConstellationModel model(spec);
    // The Sun as published at these instants, not the library's ephemeris.
    const Vec3 sun =
        epoch == EQUINOX ? Vec3{1, 0, 0} : Vec3{0, std::cos(23.44 * DEG), std::sin(23.44 * DEG)};
    const double beta = std::asin(normal.dot(sun));
    const double dark = std::acos(std::sqrt(h * h + 2 * RE * h) / (a * std::cos(beta))) / PI;
    for (int cores : {0, 2}) {
      Battery b(pm, 0.5);
      const double before = b.charge_wh();
      const auto ecl = model.eclipses(0, 0, T);
      b.run(0, T, cores, ecl);
      const double closed =
          (pm.solar_w * (1 - dark) - pm.idle_w - pm.per_core_w * cores) * T / 3600;
      EXPECT_NEAR(b.charge_wh() - before, closed, std::abs(closed) * 0.01)
          << "epoch " << epoch << " cores " << cores;
      // One eclipse per orbit, as long as the closed form says (2%).
      double shadow = 0;
      for (auto w : ecl)
        shadow += w.length();
      EXPECT_NEAR(shadow, dark * T, dark * T * 0.02);
      // A battery at the limit plus the energy of one shadow at idle: it
      // survives one eclipse idle, not with four more cores (closed form).
      const double shadow_wh = pm.idle_w * dark * T / 3600;
      Battery edge(pm, (pm.floor_wh() + shadow_wh * 1.01) / pm.battery_wh);
      const Window whole = ecl.front().begin > 0 ? ecl.front() : ecl.at(1); // not clipped
      model.update(whole.begin - 1); // just before an eclipse
      EXPECT_FALSE(model.would_breach(edge, 0, 0, dark * T + 2));
      EXPECT_TRUE(model.would_breach(edge, 0, 4, dark * T + 2));
    }
  }
}

TEST(OrbitEnergy, ChargeClampsAndDepthOfDischargeQuery) {
  const PowerModel pm{120, 80, 0.4, 20, 10}; // floor 48 Wh
  Battery full(pm, 1.0);
  full.charge(3600, true, 0);
  EXPECT_DOUBLE_EQ(full.charge_wh(), 80);
  Battery empty(pm, 0.01);
  empty.charge(3600, false, 4);
  EXPECT_DOUBLE_EQ(empty.charge_wh(), 0);

  Battery b(pm, 0.7); // 56 Wh
  const std::vector<Window> night{{0, 1800}};
  // Half an hour of shadow: 2 cores draw 40 W x 0.5 h = 20 Wh -> 36 Wh.
  EXPECT_TRUE(would_breach(b, 0, 1800, 2, night));
  // Idle: 10 Wh -> 46 Wh, still below 48.
  EXPECT_TRUE(would_breach(b, 0, 1800, 0, night));
  // Idle for 20 minutes: 6.7 Wh -> 49.3 Wh.
  EXPECT_FALSE(would_breach(b, 0, 1200, 0, night));
  // Ten minutes of shadow then sunlight: 6.7 Wh down, then charging.
  EXPECT_FALSE(would_breach(b, 0, 3600, 2, {{0, 600}}));
  EXPECT_DOUBLE_EQ(b.charge_wh(), 56); // the query changes nothing
  Battery run = b;
  const double lowest = run.run(0, 3600, 2, {{0, 600}});
  EXPECT_NEAR(lowest, 56 - 40.0 * 600 / 3600, 1e-9);
  EXPECT_NEAR(run.charge_wh(), std::min(80.0, lowest + 80.0 * 3000 / 3600), 1e-9);
}

TEST(OrbitModel, ContactWindowsOfAnEquatorialOrbit) {
  // One satellite on an equatorial prograde orbit and a station on the
  // equator: passes recur every synodic period and last 2 x (Earth central
  // angle of the visibility circle) / (relative angular rate).
  const double h = 550e3, a = RE + h, min_el = 25 * DEG;
  ModelSpec spec;
  spec.walker = pattern(0, 1, 1, 0, h);
  spec.epoch_unix = EQUINOX;
  spec.stations.push_back({"quito", 0, -78.5, 25});
  ConstellationModel model(spec);
  const double rate = 2 * PI / closed_period(h) - OMEGA_E;
  const double half = (std::acos(RE * std::cos(min_el) / a) - min_el) / rate;
  // The satellite starts on the x axis; the station's angle is GMST + lon.
  double station0 = std::fmod(model.gmst0() - 78.5 * DEG + 4 * PI, 2 * PI);
  auto windows = model.contact_windows(0, 0, 0, 8 * 3600);
  ASSERT_GE(windows.size(), 4u);
  const double synodic = 2 * PI / rate;
  int whole = 0;
  for (const auto& w : windows) {
    if (w.begin <= 0 || w.end >= 8 * 3600)
      continue; // clipped at the ends of the span
    ++whole;
    const double k = std::round((0.5 * (w.begin + w.end) - station0 / rate) / synodic);
    const double centre = station0 / rate + k * synodic;
    EXPECT_NEAR(w.begin, centre - half, 0.5);
    EXPECT_NEAR(w.end, centre + half, 0.5);
  }
  EXPECT_GE(whole, 3);
  // A station beyond the reach of the orbit never sees it.
  spec.stations[0].lat_deg = 60;
  ConstellationModel far(spec);
  EXPECT_TRUE(far.contact_windows(0, 0, 0, 8 * 3600).empty());
}

namespace {

// A ring of ten satellites on one equatorial orbit (the minimum for line of
// sight between neighbours at 550 km is nine): every link is the chord of 36
// degrees.
ModelSpec ring_spec() {
  ModelSpec spec;
  spec.walker = pattern(0, 10, 1, 0, 550e3);
  spec.epoch_unix = EQUINOX;
  spec.links.isl_bandwidth_bps = 100e6;
  spec.links.ground_bandwidth_bps = 10e6;
  return spec;
}

} // namespace

TEST(OrbitModel, RoutesOnARingByHand) {
  ModelSpec spec = ring_spec();
  const double chord = 2 * (RE + 550e3) * std::sin(PI / 10), hop = chord / C;
  ConstellationModel probe(spec);
  // A station on the equator right under slot 0 at t = 0.
  spec.stations.push_back({"under-0", 0, std::remainder(-probe.gmst0() / DEG, 360.0), 25});
  ConstellationModel model(spec);
  model.set_targets({0});
  model.update(0);
  EXPECT_EQ(model.links_up(), 10);
  for (const auto& l : model.links())
    EXPECT_NEAR(l.latency_s, hop, 1e-12);

  auto r = model.route(0, 3); // 0 is a target: read from its tree
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_NEAR(r->latency_s, 3 * hop, 1e-12);
  EXPECT_EQ(r->hops(), 3);
  auto back = model.route(7, 0);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->path, (std::vector<int>{7, 8, 9, 0}));
  auto other = model.route(2, 8); // neither end a target: a Dijkstra of its own
  ASSERT_TRUE(other);
  EXPECT_EQ(other->path, (std::vector<int>{2, 1, 0, 9, 8}));
  EXPECT_NEAR(model.latency(8, 2), 4 * hop, 1e-12);
  EXPECT_EQ(model.route(4, 4)->path, (std::vector<int>{4}));
  EXPECT_EQ(model.next_hop(3, 0), 2);
  EXPECT_EQ(model.next_hop(0, 7), 9);
  EXPECT_EQ(model.next_hop(2, 8), 1);
  EXPECT_EQ(model.next_hop(4, 4), -1);

  // 1 MB: cut-through pays the transmission once, store-and-forward per hop.
  const uint64_t bytes = 1000000;
  EXPECT_NEAR(model.delay(*r, bytes), 3 * hop + 8e6 / 100e6, 1e-12);
  EXPECT_NEAR(model.delay(*r, bytes, Forwarding::store_and_forward), 3 * hop + 3 * 8e6 / 100e6,
              1e-12);
  EXPECT_NEAR(*model.message_delay(0, 3, bytes), 3 * hop + 0.08, 1e-12);

  // The station sees slot 0 alone, straight up.
  ASSERT_EQ(model.contacts(0).size(), 1u);
  EXPECT_EQ(model.contacts(0)[0].slot, 0);
  EXPECT_TRUE(model.in_contact(0));
  EXPECT_FALSE(model.in_contact(1));
  EXPECT_NEAR(model.contacts(0)[0].elevation_deg, 90, 1e-4); // asin near 1
  auto g = model.ground_route(0, 3);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->path, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_NEAR(g->uplink_s, 550e3 / C, 1e-9);
  EXPECT_NEAR(g->latency_s, 550e3 / C + 3 * hop, 1e-9);
  EXPECT_EQ(g->hops(), 4);
  // The ground link (10 Mbit/s) is the slowest of the route.
  EXPECT_NEAR(model.delay(*g, bytes), g->latency_s + 0.8, 1e-9);

  // Beyond the links' range nothing is reachable, and no station route.
  spec.links.max_range_m = chord * 0.99;
  ConstellationModel cut(spec);
  EXPECT_EQ(cut.links_up(), 0);
  EXPECT_FALSE(cut.route(0, 3));
  EXPECT_FALSE(cut.reachable(0, 1));
  EXPECT_TRUE(cut.ground_route(0, 0));
  EXPECT_FALSE(cut.ground_route(0, 1));
}

TEST(OrbitModel, AllPairsMatchesFloydWarshall) {
  ModelSpec spec;
  spec.walker = pattern(53, 120, 10, 3, 550e3); // 12 per plane
  spec.epoch_unix = EQUINOX;
  spec.links.max_range_m = 4000e3; // in-plane links are 3586 km
  ConstellationModel model(spec);
  model.set_targets({5, 77});
  for (double t : {0.0, 1234.5}) {
    model.update(t);
    const int n = model.size();
    const auto un = static_cast<size_t>(n);
    std::vector<double> d(un * un, infinity);
    for (size_t i = 0; i < un; ++i)
      d[i * un + i] = 0;
    int up = 0;
    for (const auto& l : model.links()) {
      if (!l.up)
        continue;
      ++up;
      const double w = (model.position(l.a) - model.position(l.b)).norm() / C;
      d[static_cast<size_t>(l.a) * un + static_cast<size_t>(l.b)] = w;
      d[static_cast<size_t>(l.b) * un + static_cast<size_t>(l.a)] = w;
    }
    EXPECT_GT(up, 100);
    EXPECT_LT(up, 240); // some cross-plane links are out of range
    for (size_t k = 0; k < un; ++k)
      for (size_t i = 0; i < un; ++i)
        for (size_t j = 0; j < un; ++j)
          d[i * un + j] = std::min(d[i * un + j], d[i * un + k] + d[k * un + j]);
    const auto all = model.all_pairs_latency();
    for (size_t i = 0; i < un * un; ++i) {
      if (d[i] == infinity)
        EXPECT_EQ(all[i], infinity);
      else
        EXPECT_NEAR(all[i], d[i], 1e-12);
    }
    // Routes from the kept trees and from fresh Dijkstras agree with it, and
    // a route's latency is the sum of its links.
    for (auto [a, b] : {std::pair{5, 100}, std::pair{100, 77}, std::pair{3, 64}}) {
      const double want = d[static_cast<size_t>(a) * un + static_cast<size_t>(b)];
      EXPECT_NEAR(model.latency(a, b), want, 1e-12);
      auto r = model.route(a, b);
      ASSERT_EQ(r.has_value(), want < infinity);
      if (!r)
        continue;
      EXPECT_EQ(r->path.front(), a);
      EXPECT_EQ(r->path.back(), b);
      double sum = 0;
      for (size_t k = 1; k < r->path.size(); ++k)
        sum += (model.position(r->path[k - 1]) - model.position(r->path[k])).norm() / C;
      EXPECT_NEAR(sum, want, 1e-12);
    }
  }
}

TEST(OrbitModel, SubpointAndJ2) {
  ModelSpec spec;
  spec.walker = pattern(53, 24, 4, 1, 550e3);
  spec.epoch_unix = EQUINOX;
  ConstellationModel model(spec);
  // A quarter orbit after the node, slot 0 is at its highest latitude.
  model.update(closed_period(550e3) / 4);
  EXPECT_NEAR(model.subpoint(0).lat_deg, 53, 1e-6);
  EXPECT_NEAR(model.subpoint(0).alt_m, 550e3, 1e-3);
  // J2 turns a 53-degree plane westwards by about 4.5 degrees a day at 550 km
  // (closed form: -3/2 n J2 (R/a)^2 cos i).
  spec.j2 = true;
  ConstellationModel j2(spec);
  const double n = 2 * PI / closed_period(550e3),
               k = 1.08262668e-3 * std::pow(RE / (RE + 550e3), 2);
  const double per_day = -1.5 * n * k * std::cos(53 * DEG) * 86400 / DEG;
  EXPECT_NEAR(per_day, -4.5, 0.2);
  // The node of plane 0 after a day: where its orbit crosses the equator
  // northwards, i.e. the direction of normal x z.
  const double T = j2.walker().period();
  const double day = std::round(86400 / T) * T; // whole orbits: back at the node
  const Vec3 p = j2.position_at(0, day);
  EXPECT_NEAR(std::atan2(p.y, p.x) / DEG, per_day * day / 86400, 0.05);
}

TEST(OrbitClock, SimulatedTimeFollowsTheWallTimesTheScale) {
  ManualWallClock wall(1000);
  SimClock clock(wall, 60, EQUINOX);
  EXPECT_DOUBLE_EQ(clock.now(), 0);
  wall.advance(1.5);
  EXPECT_DOUBLE_EQ(clock.now(), 90);
  EXPECT_DOUBLE_EQ(clock.utc_now(), EQUINOX + 90);
  EXPECT_DOUBLE_EQ(clock.wall_duration(60), 1);
  EXPECT_DOUBLE_EQ(clock.wall_at(120), 1002);
  SimClock shared(wall, 999, 2, EQUINOX); // a start agreed on by every node
  EXPECT_DOUBLE_EQ(shared.now(), 5);
}

TEST(OrbitWindows, FindsEdgesToTheTolerance) {
  auto inside = [](double t) { return std::fmod(t, 100) >= 30 && std::fmod(t, 100) < 70; };
  auto w = find_windows(inside, 50, 400, 7);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_DOUBLE_EQ(w[0].begin, 50); // open at the start: clipped
  EXPECT_NEAR(w[0].end, 70, 1e-3);
  EXPECT_NEAR(w[1].begin, 130, 1e-3);
  EXPECT_NEAR(w[3].end, 370, 1e-3);
  EXPECT_NEAR(overlap(w, 0, 400), 20 + 3 * 40, 1e-2);
}

TEST(OrbitPlanData, Walker24OverTwoOrbits) {
  auto file = load_constellation(std::string(ORBITRAIN_SOURCE_DIR) + "/configs/walker-24.toml");
  PlanOptions o;
  o.hours = 2 * closed_period(550e3) / 3600;
  const Plan p = make_plan(file, o);
  ASSERT_EQ(p.satellites.size(), 24u);
  EXPECT_EQ(p.links.size(), 48u);
  EXPECT_EQ(p.stations.size(), 2u);
  const double dark_max = std::asin(RE / (RE + 550e3)) / PI; // beta = 0, cylindrical shadow
  for (const auto& s : p.satellites) {
    // Two orbits: two eclipses, or three when the span cuts one in two.
    EXPECT_GE(s.eclipses.size(), 2u);
    EXPECT_LE(s.eclipses.size(), 3u);
    EXPECT_GE(1 - s.sunlit_fraction, 0);
    EXPECT_LE(1 - s.sunlit_fraction, dark_max * 1.01);
    EXPECT_EQ(s.soc.size(), static_cast<size_t>(std::ceil(p.span_s / 60)) + 1);
    EXPECT_LE(s.soc_min, 1);
    EXPECT_FALSE(s.below_limit); // idle never takes 40% of the battery
  }
  for (const auto& st : p.stations)
    for (size_t k = 1; k < st.contacts.size(); ++k)
      EXPECT_LE(st.contacts[k - 1].window.begin, st.contacts[k].window.begin);
  EXPECT_THROW(
      make_plan(load_constellation(std::string(ORBITRAIN_SOURCE_DIR) + "/configs/local-3.toml"), o),
      std::invalid_argument);
}
