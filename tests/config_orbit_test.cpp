// The orbit sections of the constellation file: [orbit], the satellites'
// Walker slots, [links], [[ground_station]] and [energy]; their defaults and
// every kind of bad input, each reported with its file and line.
#include "core/config.hpp"
#include "tests/config_support.hpp"

#include <algorithm>
#include <gtest/gtest.h>

using namespace orbitrain;

namespace {

const char* const base = orbitrain::testing::two_satellites;

const char* orbit = R"(
[orbit]
walker = "53:24/4/1"
altitude_km = 550
epoch = "2026-03-20T03:06:00Z"
time_scale = 60
)";

using orbitrain::testing::issues_of;
using orbitrain::testing::single_issue;

// The line of the first occurrence of `needle` in `text`.
int line_of(const std::string& text, const std::string& needle) {
  auto pos = text.find(needle);
  EXPECT_NE(pos, std::string::npos) << needle;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
}

std::string with_orbit(const std::string& extra = "") {
  return std::string(base) + orbit + extra;
}

} // namespace

TEST(ConfigOrbit, NoOrbitSectionMeansNoModel) {
  auto c = parse_constellation(base, "c.toml");
  EXPECT_FALSE(c.orbit);
  EXPECT_EQ(c.satellites[0].slot, -1);
  EXPECT_TRUE(c.ground_stations.empty());
  EXPECT_DOUBLE_EQ(c.links.min_altitude_km, 80);
  EXPECT_DOUBLE_EQ(c.energy.depth_of_discharge, 0.4);
}

TEST(ConfigOrbit, OrbitLoadsWithDefaults) {
  auto c = parse_constellation(with_orbit(), "c.toml");
  ASSERT_TRUE(c.orbit);
  EXPECT_EQ(c.orbit->walker.total, 24);
  EXPECT_EQ(c.orbit->walker.planes, 4);
  EXPECT_EQ(c.orbit->walker.phasing, 1);
  EXPECT_DOUBLE_EQ(c.orbit->walker.inclination_deg, 53);
  EXPECT_DOUBLE_EQ(c.orbit->walker.altitude_m, 550e3);
  EXPECT_DOUBLE_EQ(c.orbit->time_scale, 60);
  EXPECT_FALSE(c.orbit->j2);
  // 2026-03-20T03:06:00Z, counted independently: 56 years of days since 1970.
  const double days = 365.0 * 56 + 14 /* leap days 1972..2024 */ + 31 + 28 + 19;
  EXPECT_DOUBLE_EQ(c.orbit->epoch_unix, days * 86400 + 3 * 3600 + 6 * 60);
  EXPECT_EQ(c.satellites[0].slot, 0); // by file order
  EXPECT_EQ(c.satellites[1].slot, 1);
}

TEST(ConfigOrbit, AllSections) {
  std::string text = std::string(base) + R"(
[orbit]
walker = "97.6:12/3/2"
altitude_km = 700.5
epoch = 2026-06-21T00:00:00+02:00
j2 = true

[links]
isl_bandwidth_mbps = 1000
max_range_km = 4000
min_altitude_km = 100
ground_bandwidth_mbps = 20.5
queue_limit_mib = 16

[[ground_station]]
name = "svalbard"
lat = 78.23
lon = 15.39
min_elevation_deg = 10

[[ground_station]]
name = "hartebeesthoek"
lat = -25.89
lon = 27.69

[energy]
solar_w = 200
battery_wh = 100
depth_of_discharge = 0.3
idle_w = 15
per_core_w = 12.5
initial_soc = 0.8
)";
  text.replace(text.find("port = 4302"), 11, "port = 4302\nslot = 7");
  auto c = parse_constellation(text, "c.toml");
  ASSERT_TRUE(c.orbit);
  EXPECT_TRUE(c.orbit->j2);
  EXPECT_DOUBLE_EQ(c.orbit->walker.altitude_m, 700.5e3);
  EXPECT_DOUBLE_EQ(c.orbit->time_scale, 1);
  EXPECT_EQ(format_utc_time(c.orbit->epoch_unix), "2026-06-20T22:00:00Z");
  EXPECT_EQ(c.satellites[0].slot, 0);
  EXPECT_EQ(c.satellites[1].slot, 7);
  EXPECT_DOUBLE_EQ(c.links.isl_bandwidth_mbps, 1000);
  EXPECT_DOUBLE_EQ(c.links.max_range_km, 4000);
  EXPECT_DOUBLE_EQ(c.links.min_altitude_km, 100);
  EXPECT_DOUBLE_EQ(c.links.ground_bandwidth_mbps, 20.5);
  EXPECT_DOUBLE_EQ(c.links.queue_limit_mib, 16);
  ASSERT_EQ(c.ground_stations.size(), 2u);
  EXPECT_EQ(c.ground_stations[0].name, "svalbard");
  EXPECT_DOUBLE_EQ(c.ground_stations[0].lat_deg, 78.23);
  EXPECT_DOUBLE_EQ(c.ground_stations[0].min_elevation_deg, 10);
  EXPECT_DOUBLE_EQ(c.ground_stations[1].min_elevation_deg, 25);
  EXPECT_DOUBLE_EQ(c.energy.solar_w, 200);
  EXPECT_DOUBLE_EQ(c.energy.per_core_w, 12.5);
  EXPECT_DOUBLE_EQ(c.energy.initial_soc, 0.8);
}

TEST(ConfigOrbit, PhasingOutOfRange) {
  auto text = with_orbit();
  text.replace(text.find("53:24/4/1"), 9, "53:24/4/4");
  auto i = single_issue(text);
  EXPECT_EQ(i.file, "c.toml");
  EXPECT_EQ(i.line, line_of(text, "walker ="));
  EXPECT_EQ(i.key, "orbit.walker");
  EXPECT_NE(i.message.find("phasing 4 is out of range 0..3"), std::string::npos) << i.message;
}

TEST(ConfigOrbit, AltitudeBelow160km) {
  auto text = with_orbit();
  text.replace(text.find("altitude_km = 550"), 17, "altitude_km = 150");
  auto i = single_issue(text);
  EXPECT_EQ(i.line, line_of(text, "altitude_km ="));
  EXPECT_EQ(i.key, "orbit.altitude_km");
  EXPECT_NE(i.message.find("150 km is below 160 km"), std::string::npos) << i.message;
}

TEST(ConfigOrbit, MalformedWalkerAndEpoch) {
  auto text = with_orbit();
  text.replace(text.find("53:24/4/1"), 9, "53-24-4");
  text.replace(text.find("2026-03-20T03:06:00Z"), 20, "2026-02-30T03:06:00Z");
  auto all = issues_of(text);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].key, "orbit.walker");
  EXPECT_EQ(all[0].line, line_of(text, "walker ="));
  EXPECT_EQ(all[1].key, "orbit.epoch");
  EXPECT_EQ(all[1].line, line_of(text, "epoch ="));
}

TEST(ConfigOrbit, MoreSatellitesThanSlots) {
  auto text = with_orbit();
  text.replace(text.find("53:24/4/1"), 9, "53:1/1/0");
  auto i = single_issue(text);
  EXPECT_EQ(i.key, "satellite[2]");
  EXPECT_EQ(i.line, 8); // the second [[satellite]]
  EXPECT_NE(i.message.find("more satellites than slots"), std::string::npos) << i.message;
  EXPECT_NE(i.message.find("has 1 slots"), std::string::npos) << i.message;
}

TEST(ConfigOrbit, SlotOutOfRangeAndDuplicate) {
  auto text = with_orbit();
  text.replace(text.find("port = 4302"), 11, "port = 4302\nslot = 24");
  auto i = single_issue(text);
  EXPECT_EQ(i.key, "satellite[2].slot");
  EXPECT_EQ(i.line, 12);
  EXPECT_NE(i.message.find("24 is out of range 0..23"), std::string::npos) << i.message;

  text = with_orbit();
  text.replace(text.find("port = 4302"), 11, "port = 4302\nslot = 0");
  i = single_issue(text);
  EXPECT_EQ(i.key, "satellite[2].slot");
  EXPECT_EQ(i.line, 12);
  EXPECT_NE(i.message.find("duplicate slot 0"), std::string::npos) << i.message;
}

TEST(ConfigOrbit, SlotOrStationWithoutOrbit) {
  std::string text = base;
  text.replace(text.find("port = 4302"), 11, "port = 4302\nslot = 3");
  auto i = single_issue(text);
  EXPECT_EQ(i.key, "satellite[2].slot");
  EXPECT_NE(i.message.find("[orbit]"), std::string::npos);
  i = single_issue(std::string(base) + "\n[[ground_station]]\nname = \"g\"\nlat = 1\nlon = 2\n");
  EXPECT_EQ(i.key, "ground_station[1]");
}

TEST(ConfigOrbit, GroundStationOutOfRange) {
  const std::string text = with_orbit(R"(
[[ground_station]]
name = "north"
lat = 91
lon = -181
min_elevation_deg = 95
)");
  auto all = issues_of(text);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].key, "ground_station[1].lat");
  EXPECT_EQ(all[0].line, line_of(text, "lat = 91"));
  EXPECT_NE(all[0].message.find("91 is out of range -90..90"), std::string::npos);
  EXPECT_EQ(all[1].key, "ground_station[1].lon");
  EXPECT_NE(all[1].message.find("-181 is out of range -180..180"), std::string::npos);
  EXPECT_EQ(all[2].key, "ground_station[1].min_elevation_deg");
  EXPECT_NE(all[2].message.find("95 is out of range 0..90"), std::string::npos);
}

TEST(ConfigOrbit, GroundStationMissingAndDuplicateNames) {
  const std::string text = with_orbit(R"(
[[ground_station]]
name = "a"
lat = 10

[[ground_station]]
name = "a"
lat = 10
lon = 10
)");
  auto all = issues_of(text);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].key, "ground_station[1].lon");
  EXPECT_EQ(all[0].message, "missing required key");
  EXPECT_EQ(all[1].key, "ground_station[2].name");
  EXPECT_NE(all[1].message.find("duplicate ground station 'a'"), std::string::npos);
}

TEST(ConfigOrbit, LinksAndEnergyValidated) {
  const std::string text = with_orbit(R"(
[links]
isl_bandwidth_mbps = 0
min_altitude_km = 600
colour = "red"

[energy]
depth_of_discharge = 1.5
initial_soc = "full"
)");
  auto all = issues_of(text);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].key, "links.isl_bandwidth_mbps");
  EXPECT_EQ(all[1].key, "links.min_altitude_km");
  EXPECT_NE(all[1].message.find("below the orbit's altitude"), std::string::npos);
  EXPECT_EQ(all[2].key, "links.colour");
  EXPECT_EQ(all[3].key, "energy.depth_of_discharge");
  EXPECT_EQ(all[4].key, "energy.initial_soc");
  EXPECT_NE(all[4].message.find("expected a number"), std::string::npos);
}

TEST(ConfigOrbit, UtcTimes) {
  EXPECT_DOUBLE_EQ(*parse_utc_time("1970-01-01T00:00:00Z"), 0);
  EXPECT_DOUBLE_EQ(*parse_utc_time("2000-01-01T12:00:00Z"), 946728000);
  EXPECT_DOUBLE_EQ(*parse_utc_time("2000-01-01T12:00:00.25+00:00"), 946728000.25);
  EXPECT_DOUBLE_EQ(*parse_utc_time("2024-02-29T00:00:00Z"), 1709164800);
  EXPECT_FALSE(parse_utc_time("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_utc_time("2026-03-20T03:06:00"));
  EXPECT_FALSE(parse_utc_time("2026-03-20T03:06:00+01:00"));
  EXPECT_FALSE(parse_utc_time("2026-03-20 03:06"));
  EXPECT_EQ(format_utc_time(1709164800), "2024-02-29T00:00:00Z");
  EXPECT_EQ(format_utc_time(946728000.9), "2000-01-01T12:00:00Z");
}
