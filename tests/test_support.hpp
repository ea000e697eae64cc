// Helpers shared by the test suites: a temporary directory removed with its
// content, and reading a whole file.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace orbitrain::testing {

/// A fresh directory under /tmp named after `tag`; removed at scope exit.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag = "test") {
    std::string t = "/tmp/orbitrain-" + tag + "-XXXXXX";
    if (!::mkdtemp(t.data()))
      throw std::runtime_error("mkdtemp failed for " + t);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

} // namespace orbitrain::testing
