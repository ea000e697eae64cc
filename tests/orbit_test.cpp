// Orbit geometry against physics computed here, in closed form, not with the
// library's own formulas: the period found by propagating an orbit, the
// longest eclipse of an orbit, in-plane link latency, the duration of an
// overhead pass; plus the +Grid topology and impossible patterns.
#include "orbit/orbit.hpp"
#include "tests/orbit_closed_forms.hpp"

#include <gtest/gtest.h>

using namespace orbitrain::orbit;
using namespace orbitrain::testing::closed_form;

namespace {} // namespace

TEST(Orbit, PeriodAt550kmFromPropagation) {
  EXPECT_NEAR(closed_period(550e3) / 60, 95.6, 95.6 * 0.001);
  Walker w(pattern(53, 24, 4, 1, 550e3));
  // The time the satellite takes to come back to where it started.
  const Vec3 start = w.position(0, 0);
  double best_t = 0, best_d = 1e300;
  for (double t = 5000; t < 6500; t += 0.05) {
    double d = (w.position(0, t) - start).norm();
    if (d < best_d)
      best_d = d, best_t = t;
  }
  EXPECT_NEAR(best_t, closed_period(550e3), closed_period(550e3) * 0.001);
  EXPECT_NEAR(w.position(0, 1234).norm(), RE + 550e3, 1e-3);
}

TEST(Orbit, LongestEclipsePerOrbitAt550km) {
  // Sun in the orbital plane (beta = 0): the longest eclipse.
  Walker w(pattern(0, 1, 1, 0, 550e3));
  const Vec3 sun{1, 0, 0};
  const double T = closed_period(550e3);
  double dark = 0;
  const double dt = 0.5;
  for (double t = 0; t < T; t += dt)
    if (in_eclipse(w.position(0, t), sun))
      dark += dt;
  const double closed = T * std::asin(RE / (RE + 550e3)) / PI; // cylindrical shadow
  EXPECT_NEAR(dark, closed, closed * 0.02);
  EXPECT_GT(dark / 60, 30); // about 35.7 minutes
}

TEST(Orbit, InPlaneLinkLatencyIsChordOverC) {
  Walker w(pattern(53, 1584, 72, 1, 550e3)); // Starlink's first shell: 72 x 22
  const int n = 22;
  const double chord = 2 * (RE + 550e3) * std::sin(PI / n);
  for (double t : {0.0, 100.0, 3000.0}) {
    const Vec3 a = w.position(0, t), b = w.position(1, t);
    EXPECT_NEAR(Walker::latency(a, b), chord / C, 1e-12);
    EXPECT_TRUE(line_of_sight(a, b));
  }
  // Six satellites per plane at 550 km cannot see their neighbours.
  Walker sparse(pattern(53, 24, 4, 1, 550e3));
  EXPECT_FALSE(line_of_sight(sparse.position(0, 0), sparse.position(1, 0)));
}

TEST(Orbit, OverheadPassDuration) {
  // An equatorial, prograde orbit passes over a station on the equator.
  const double h = 550e3, a = RE + h, min_el = 25 * PI / 180;
  Walker w(pattern(0, 1, 1, 0, h));
  // At t = 0 the satellite is overhead: the pass lasts twice the time until
  // it sinks below the minimum elevation.
  double half = 0;
  const double dt = 0.05;
  while (elevation_deg(w.position(0, half), 0, 0, half) >= 25)
    half += dt;
  // Earth central angle of the visibility circle, and the satellite's speed
  // relative to the rotating Earth.
  const double half_angle = std::acos(RE * std::cos(min_el) / a) - min_el;
  const double rel_rate = 2 * PI / closed_period(h) - 7.2921159e-5;
  const double closed = 2 * half_angle / rel_rate;
  EXPECT_NEAR(2 * half, closed, closed * 0.05);
  EXPECT_GT(closed / 60, 3); // a few minutes per pass
  EXPECT_LT(closed / 60, 10);
}

TEST(Orbit, PlusGridLinks) {
  Walker w(pattern(53, 24, 4, 1, 550e3));
  auto links = w.grid_links();
  EXPECT_EQ(links.size(), 48u); // four links per satellite, each counted once
  std::vector<int> degree(24, 0);
  for (auto [a, b] : links) {
    ++degree[static_cast<size_t>(a)];
    ++degree[static_cast<size_t>(b)];
  }
  for (int d : degree)
    EXPECT_EQ(d, 4);
}

TEST(Orbit, ImpossiblePatternsAreClearErrors) {
  auto phasing = WalkerDelta::parse("53:24/4/4", 550e3);
  ASSERT_FALSE(phasing.ok());
  EXPECT_NE(phasing.error().message.find("phasing 4 is out of range 0..3"), std::string::npos);
  auto low = WalkerDelta::parse("53:24/4/1", 150e3);
  ASSERT_FALSE(low.ok());
  EXPECT_NE(low.error().message.find("below 160 km"), std::string::npos);
  auto uneven = WalkerDelta::parse("53:25/4/1", 550e3);
  ASSERT_FALSE(uneven.ok());
  EXPECT_NE(uneven.error().message.find("must divide"), std::string::npos);
  EXPECT_FALSE(WalkerDelta::parse("53-24-4", 550e3).ok());
  auto ok = WalkerDelta::parse("53:24/4/1", 550e3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->per_plane(), 6);
}
