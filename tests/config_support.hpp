// What the constellation-file tests (config_test, config_orbit_test) share:
// a valid file of two satellites and a job, and the issues a text raises.
#pragma once

#include "core/config.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace orbitrain::testing {

// Lines 1-15: two satellites and the job; valid on its own. Tests that
// check line numbers append to it, so it does not change.
inline const char* const two_satellites = R"(name = "test-3"

[[satellite]]
id = "sat-1"
host = "127.0.0.1"
port = 4301

[[satellite]]
id = "sat-2"
host = "127.0.0.1"
port = 4302

[job]
scheduler = "sat-1"
parameter_server = "sat-2"
)";

// Every issue parsing `text` raises (a failure when it parses).
inline std::vector<ConfigIssue> issues_of(const std::string& text) {
  try {
    parse_constellation(text, "c.toml");
  } catch (const ConfigError& e) {
    return e.issues();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return {};
}

// The single issue parsing `text` must raise.
inline ConfigIssue single_issue(const std::string& text) {
  auto all = issues_of(text);
  EXPECT_EQ(all.size(), 1u);
  if (all.size() != 1)
    for (auto& i : all)
      ADD_FAILURE() << i.to_string();
  return all.empty() ? ConfigIssue{} : all[0];
}

} // namespace orbitrain::testing
