// Running the orbitrain CLI from a test with stdout and stderr captured
// apart (through files in the test's directory, so neither pipe can fill).
#pragma once

#include "core/process.hpp"
#include "tests/test_support.hpp"

#include <chrono>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace orbitrain::testing {

struct CliRun {
  int status = -1;
  std::string out, err;
  std::string exit() const { return describe_wait_status(status); }
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  nlohmann::json json() const { return nlohmann::json::parse(out); }
};

/// Runs `binary args...`, waiting at most `timeout` (a failed expectation
/// if it takes longer).
inline CliRun run_captured(const std::string& binary, const TempDir& dir,
                           const std::vector<std::string>& args, std::chrono::seconds timeout) {
  const std::string out = dir.path + "/cli.out", err = dir.path + "/cli.err";
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" >'" + out + "' 2>'" + err + "'",
                                   "sh", binary};
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = Child::spawn(argv);
  CliRun r;
  auto st = child.wait_for(timeout);
  EXPECT_TRUE(st) << "orbitrain " << (args.empty() ? "" : args[0]) << " did not finish";
  r.status = st.value_or(-1);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

} // namespace orbitrain::testing
