// `orbitrain plan` run as a user runs it: the JSON has the documented shape
// and plausible content for configs/walker-24.toml, the SVG is well-formed
// XML with a row per satellite, the table names every section, and a file
// without [orbit] is refused with exit code 2.
#include "core/process.hpp"
#include "tests/cli_support.hpp"
#include "tests/test_support.hpp"

#include <cctype>
#include <chrono>
#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

using namespace orbitrain;
using namespace orbitrain::testing;
using namespace std::chrono_literals;

namespace {

const std::string binary = ORBITRAIN_BINARY;
const std::string walker24 = std::string(ORBITRAIN_SOURCE_DIR) + "/configs/walker-24.toml";

using Run = orbitrain::testing::CliRun;

Run plan(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "plan");
  return orbitrain::testing::run_captured(binary, dir, args, 60s);
}

// A small XML well-formedness check: a prolog, balanced and properly nested
// elements, quoted attributes, entities only from XML's five, no stray '<'
// or '&' in text. Returns "" when well-formed, else what is wrong, and counts
// the elements by name.
std::string check_xml(const std::string& x, std::map<std::string, int>& count) {
  std::vector<std::string> open;
  size_t i = 0;
  if (x.rfind("<?xml", 0) == 0)
    i = x.find("?>") + 2;
  bool root_seen = false;
  auto entity_ok = [&](size_t at) {
    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
      if (x.compare(at, std::strlen(e), e) == 0)
        return true;
    return false;
  };
  while (i < x.size()) {
    if (x[i] == '&' && !entity_ok(i))
      return "bad entity at " + std::to_string(i);
    if (x[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(x[i])))
        return "text outside the root element at " + std::to_string(i);
      ++i;
      continue;
    }
    const bool closing = x[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    size_t name_end = j;
    while (name_end < x.size() && (std::isalnum(static_cast<unsigned char>(x[name_end])) ||
                                   x[name_end] == '-' || x[name_end] == ':'))
      ++name_end;
    const std::string name = x.substr(j, name_end - j);
    if (name.empty())
      return "a '<' that opens no element at " + std::to_string(i);
    // Attributes: name="value" pairs until '>' or '/>'.
    size_t k = name_end;
    for (;;) {
      while (k < x.size() && std::isspace(static_cast<unsigned char>(x[k])))
        ++k;
      if (k >= x.size())
        return "unterminated tag " + name;
      if (x[k] == '>' || (x[k] == '/' && x[k + 1] == '>'))
        break;
      if (closing)
        return "attributes on a closing tag " + name;
      size_t eq = x.find('=', k);
      if (eq == std::string::npos || x[eq + 1] != '"')
        return "unquoted attribute in " + name + " at " + std::to_string(k);
      size_t end = x.find('"', eq + 2);
      const std::string value = x.substr(eq + 2, end - eq - 2);
      if (value.find('<') != std::string::npos)
        return "'<' in an attribute of " + name;
      for (size_t a = value.find('&'); a != std::string::npos; a = value.find('&', a + 1))
        if (!entity_ok(eq + 2 + a))
          return "bad entity in an attribute of " + name;
      k = end + 1;
    }
    const bool self_closing = x[k] == '/';
    if (closing) {
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
    } else {
      if (open.empty() && root_seen)
        return "a second root element " + name;
      root_seen = true;
      ++count[name];
      if (!self_closing)
        open.push_back(name);
    }
    i = k + (self_closing ? 2 : 1);
  }
  if (!open.empty())
    return "<" + open.back() + "> never closed";
  return root_seen ? "" : "no root element";
}

} // namespace

TEST(OrbitPlan, JsonShape) {
  TempDir dir("plan");
  auto r = plan(dir, {"--config", walker24, "--hours", "3", "--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["constellation"], "walker-24");
  EXPECT_EQ(j["walker"]["pattern"], "53:24/4/1");
  EXPECT_EQ(j["walker"]["total"], 24);
  EXPECT_DOUBLE_EQ(j["walker"]["altitude_km"].get<double>(), 550);
  EXPECT_EQ(j["epoch"], "2026-03-20T03:06:00Z");
  EXPECT_DOUBLE_EQ(j["span_s"].get<double>(), 3 * 3600);
  EXPECT_NEAR(j["period_s"].get<double>() / 60, 95.6, 0.1);

  ASSERT_EQ(j["satellites"].size(), 24u);
  for (const auto& s : j["satellites"]) {
    EXPECT_TRUE(s["id"].is_string());
    EXPECT_TRUE(s["slot"].is_number_integer());
    EXPECT_NEAR(s["period_s"].get<double>(), j["period_s"].get<double>(), 1e-9);
    // Three hours hold one to three eclipses of at most 36 minutes each.
    ASSERT_TRUE(s["eclipses"].is_array());
    EXPECT_GE(s["eclipses"].size(), 1u);
    EXPECT_LE(s["eclipses"].size(), 3u);
    for (const auto& e : s["eclipses"]) {
      EXPECT_LT(e["begin_s"].get<double>(), e["end_s"].get<double>());
      EXPECT_LE(e["end_s"].get<double>() - e["begin_s"].get<double>(), 36 * 60);
    }
    EXPECT_GT(s["sunlit_fraction"].get<double>(), 0.5);
    EXPECT_LT(s["sunlit_fraction"].get<double>(), 1.0);
    // The idle state of charge, sampled every minute from the epoch.
    ASSERT_EQ(s["soc"].size(), 3u * 60 + 1);
    EXPECT_DOUBLE_EQ(s["soc"][0].get<double>(), 1.0);
    EXPECT_GE(s["soc_min"].get<double>(), 0);
    EXPECT_LE(s["soc_min"].get<double>(), 1);
    EXPECT_TRUE(s["below_limit"].is_boolean());
    EXPECT_TRUE(s["route_to_parameter_server"]["fraction"].is_number());
  }
  ASSERT_EQ(j["ground_stations"].size(), 2u);
  EXPECT_EQ(j["ground_stations"][0]["name"], "weilheim");
  EXPECT_FALSE(j["ground_stations"][0]["contacts"].empty());
  for (const auto& g : j["ground_stations"])
    for (const auto& c : g["contacts"]) {
      EXPECT_TRUE(c["satellite"].is_string());
      // A pass above 25 degrees from 550 km lasts at most about 5 minutes.
      EXPECT_GT(c["duration_s"].get<double>(), 0);
      EXPECT_LT(c["duration_s"].get<double>(), 6 * 60);
    }
  ASSERT_EQ(j["links"].size(), 48u); // +Grid: two links per satellite
  for (const auto& l : j["links"]) {
    EXPECT_GE(l["up_fraction"].get<double>(), 0);
    EXPECT_LE(l["up_fraction"].get<double>(), 1);
    if (l["up_fraction"].get<double>() > 0)
      EXPECT_LE(l["latency_ms"]["max"].get<double>(), 5000e3 / 299792458.0 * 1e3 + 1e-9);
    else
      EXPECT_TRUE(l["latency_ms"].is_null());
  }
}

TEST(OrbitPlan, SvgIsWellFormed) {
  TempDir dir("plan");
  const std::string svg = dir.path + "/plan.svg";
  auto r = plan(dir, {"--config", walker24, "--hours", "2", "--svg", svg});
  ASSERT_TRUE(r.ok()) << r.err;
  const std::string x = slurp(svg);
  std::map<std::string, int> count;
  EXPECT_EQ(check_xml(x, count), "");
  EXPECT_EQ(count["svg"], 1);
  EXPECT_EQ(count["polyline"], 24);  // one state-of-charge line per satellite
  EXPECT_GE(count["rect"], 24 + 24); // a row per satellite, eclipses, contacts
  EXPECT_NE(x.find("contact weilheim"), std::string::npos);
  EXPECT_NE(x.find(">2 h</text>"), std::string::npos);
  // The checker itself refuses what is not well-formed.
  std::map<std::string, int> ignored;
  EXPECT_NE(check_xml("<svg><rect></svg>", ignored), "");
  EXPECT_NE(check_xml("<svg a=1/>", ignored), "");
  EXPECT_NE(check_xml("<svg>a & b</svg>", ignored), "");
  // The table is printed meanwhile.
  EXPECT_NE(r.out.find("ECLIPSES"), std::string::npos);
  EXPECT_NE(r.out.find("CONTACTS of weilheim"), std::string::npos);
  EXPECT_NE(r.out.find("INTER-SATELLITE LINKS"), std::string::npos);
}

TEST(OrbitPlan, RefusesAFileWithoutOrbit) {
  TempDir dir("plan");
  auto r = plan(dir, {"--config", std::string(ORBITRAIN_SOURCE_DIR) + "/configs/local-3.toml"});
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2) << r.err;
  EXPECT_NE(r.err.find("no [orbit] section"), std::string::npos) << r.err;
}
