// Constellation file validation: every error names the file, the line and the
// key; valid files load with their defaults; the shipped examples load.
#include "core/config.hpp"
#include "tests/config_support.hpp"

#include <gtest/gtest.h>

using namespace orbitrain;

namespace {

const char* const valid = orbitrain::testing::two_satellites;

using orbitrain::testing::single_issue;

std::string replace(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

} // namespace

TEST(Config, ValidFileLoadsWithDefaults) {
  auto c = parse_constellation(valid, "c.toml");
  EXPECT_EQ(c.name, "test-3");
  ASSERT_EQ(c.satellites.size(), 2u);
  EXPECT_EQ(c.satellites[1].id, "sat-2");
  EXPECT_EQ(c.satellites[1].port, 4302);
  EXPECT_EQ(c.satellites[1].line, 8);
  EXPECT_EQ(c.satellites[1].address(), "127.0.0.1:4302");
  EXPECT_EQ(c.job.scheduler, "sat-1");
  EXPECT_EQ(c.job.parameter_server, "sat-2");
  EXPECT_EQ(c.storage.replicas, 2);
  EXPECT_EQ(c.satellites[0].data_dir, "orbitrain-data/test-3/sat-1");
  EXPECT_FALSE(c.caf.scheduler_threads);
  EXPECT_NE(c.find("sat-2"), nullptr);
  EXPECT_EQ(c.find("sat-9"), nullptr);
}

TEST(Config, CafAndStorageSettings) {
  auto c = parse_constellation(std::string(valid) + R"(
[storage]
root = "/tmp/x"
replicas = 1

[caf]
scheduler_threads = 3
heartbeat_interval = "500ms"
connection_timeout = "5s"
)",
                               "c.toml");
  EXPECT_EQ(c.storage.replicas, 1);
  EXPECT_EQ(c.satellites[0].data_dir, "/tmp/x/sat-1");
  EXPECT_EQ(*c.caf.scheduler_threads, 3);
  EXPECT_EQ(c.caf.heartbeat_interval->count(), 500);
  EXPECT_EQ(c.caf.connection_timeout->count(), 5000);
}

TEST(Config, UnknownTopLevelKey) {
  auto i =
      single_issue(replace(valid, "name = \"test-3\"\n", "name = \"test-3\"\ncolour = \"red\"\n"));
  EXPECT_EQ(i.file, "c.toml");
  EXPECT_EQ(i.line, 2);
  EXPECT_EQ(i.key, "colour");
  EXPECT_NE(i.message.find("unknown key"), std::string::npos);
}

TEST(Config, UnknownKeyInSatellite) {
  auto i = single_issue(replace(valid, "port = 4302", "port = 4302\nprot = 1"));
  EXPECT_EQ(i.line, 12);
  EXPECT_EQ(i.key, "satellite[2].prot");
}

TEST(Config, WrongType) {
  auto i = single_issue(replace(valid, "port = 4302", "port = \"4302\""));
  EXPECT_EQ(i.line, 11);
  EXPECT_EQ(i.key, "satellite[2].port");
  EXPECT_NE(i.message.find("expected an integer, got string"), std::string::npos) << i.message;
}

TEST(Config, PortOutOfRange) {
  auto i = single_issue(replace(valid, "port = 4302", "port = 70000"));
  EXPECT_EQ(i.line, 11);
  EXPECT_EQ(i.key, "satellite[2].port");
  EXPECT_NE(i.message.find("out of range 1..65535"), std::string::npos) << i.message;
  EXPECT_EQ(single_issue(replace(valid, "port = 4302", "port = 0")).line, 11);
}

TEST(Config, DuplicateSatelliteId) {
  auto i = single_issue(replace(replace(valid, "id = \"sat-2\"", "id = \"sat-1\""),
                                "parameter_server = \"sat-2\"", "parameter_server = \"sat-1\""));
  EXPECT_EQ(i.line, 9);
  EXPECT_EQ(i.key, "satellite[2].id");
  EXPECT_NE(i.message.find("first declared on line 4"), std::string::npos) << i.message;
}

TEST(Config, DuplicatePortOnSameHost) {
  auto i = single_issue(replace(valid, "port = 4302", "port = 4301"));
  EXPECT_EQ(i.line, 11);
  EXPECT_EQ(i.key, "satellite[2].port");
  EXPECT_NE(i.message.find("already used on line 6"), std::string::npos) << i.message;
  // The same port on another host is fine.
  auto other = replace(replace(valid, "port = 4302", "port = 4301"),
                       "host = \"127.0.0.1\"\nport = 4301\n\n[job]",
                       "host = \"127.0.0.2\"\nport = 4301\n\n[job]");
  EXPECT_NO_THROW(parse_constellation(other, "c.toml"));
}

TEST(Config, MissingRequiredKeys) {
  auto i = single_issue(replace(valid, "port = 4302\n", ""));
  EXPECT_EQ(i.key, "satellite[2].port");
  EXPECT_EQ(i.line, 8); // the [[satellite]] header
  auto n = single_issue(replace(valid, "name = \"test-3\"", ""));
  EXPECT_EQ(n.key, "name");
  EXPECT_EQ(n.line, 1);
  auto j = single_issue(replace(valid, "parameter_server = \"sat-2\"\n", ""));
  EXPECT_EQ(j.key, "job.parameter_server");
  EXPECT_EQ(j.line, 13);
}

TEST(Config, MissingHostAndPortBothReported) {
  try {
    parse_constellation(replace(valid, "host = \"127.0.0.1\"\nport = 4302\n", ""), "c.toml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.issues().size(), 2u);
    EXPECT_EQ(e.issues()[0].key, "satellite[2].host");
    EXPECT_EQ(e.issues()[1].key, "satellite[2].port");
    EXPECT_NE(std::string(e.what()).find("c.toml:8: satellite[2].port: missing required key"),
              std::string::npos)
        << e.what();
  }
}

TEST(Config, JobOnUnknownSatellite) {
  auto i = single_issue(replace(valid, "scheduler = \"sat-1\"", "scheduler = \"sat-7\""));
  EXPECT_EQ(i.line, 14);
  EXPECT_EQ(i.key, "job.scheduler");
  EXPECT_NE(i.message.find("'sat-7' is not a satellite"), std::string::npos);
}

TEST(Config, NoSatellites) {
  auto i = single_issue("name = \"x\"\n[job]\nscheduler = \"a\"\nparameter_server = \"a\"\n");
  EXPECT_EQ(i.key, "satellite");
}

TEST(Config, BadIdCharacters) {
  auto i = single_issue(replace(replace(valid, "id = \"sat-2\"", "id = \"sat 2\""),
                                "parameter_server = \"sat-2\"", "parameter_server = \"sat-1\""));
  EXPECT_EQ(i.line, 9);
  EXPECT_EQ(i.key, "satellite[2].id");
}

TEST(Config, SyntaxErrorHasLine) {
  auto i = single_issue(std::string(valid) + "[caf\n");
  EXPECT_EQ(i.line, 16);
  EXPECT_NE(i.message.find("TOML syntax error"), std::string::npos);
}

TEST(Config, CafSettingsValidated) {
  auto i = single_issue(std::string(valid) + "[caf]\nheartbeat_interval = \"soon\"\n");
  EXPECT_EQ(i.line, 17);
  EXPECT_EQ(i.key, "caf.heartbeat_interval");
  auto t = single_issue(std::string(valid) + "[caf]\nscheduler_threads = 0\n");
  EXPECT_EQ(t.key, "caf.scheduler_threads");
  auto o = single_issue(std::string(valid) +
                        "[caf]\nheartbeat_interval = \"2s\"\nconnection_timeout = \"1s\"\n");
  EXPECT_EQ(o.key, "caf.connection_timeout");
  EXPECT_EQ(o.line, 18);
}

TEST(Config, ReplicasWithinSatelliteCount) {
  auto i = single_issue(std::string(valid) + "[storage]\nreplicas = 3\n");
  EXPECT_EQ(i.key, "storage.replicas");
  EXPECT_EQ(i.line, 17);
}

TEST(Config, ReservedSectionsAcceptedEmptyButKeysRejected) {
  EXPECT_NO_THROW(
      parse_constellation(std::string(valid) + "[links]\n[energy]\n[security]\n", "c.toml"));
  auto i = single_issue(std::string(valid) + "[security]\ncafile = \"x\"\n");
  EXPECT_EQ(i.key, "security.cafile");
  EXPECT_EQ(i.line, 17);
}

TEST(Config, ToStringFormat) {
  ConfigIssue i{"a.toml", 3, "job.scheduler", "bad"};
  EXPECT_EQ(i.to_string(), "a.toml:3: job.scheduler: bad");
}

TEST(Config, MissingFile) {
  try {
    load_constellation("/nonexistent/c.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/c.toml"), std::string::npos);
  }
}

TEST(Config, ShippedExamplesLoad) {
  for (const char* name : {"local-3.toml", "local-4.toml", "reference.toml", "walker-24.toml"}) {
    std::string path = std::string(ORBITRAIN_SOURCE_DIR) + "/configs/" + name;
    EXPECT_NO_THROW(load_constellation(path)) << path;
  }
}

TEST(Duration, Parses) {
  EXPECT_EQ(parse_duration("250ms")->count(), 250);
  EXPECT_EQ(parse_duration("1.5s")->count(), 1500);
  EXPECT_EQ(parse_duration("2min")->count(), 120000);
  EXPECT_EQ(parse_duration("1h")->count(), 3600000);
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("5 s"));
  EXPECT_FALSE(parse_duration("1.2.3s"));
}
