// Implementation of cli_util.hpp.
#include "apps/cli_util.hpp"

#include <CLI/CLI.hpp>
#include <cctype>
#include <iostream>

namespace orbitrain {

void fail(const std::string& message, int code) {
  std::cerr << "error: " << message << "\n";
  throw CLI::RuntimeError(code);
}

Constellation load_or_fail(const std::string& path) {
  try {
    return load_constellation(path);
  } catch (const ConfigError& e) {
    for (const auto& issue : e.issues())
      std::cerr << "error: " << issue.to_string() << "\n";
    throw CLI::RuntimeError(2);
  }
}

std::chrono::milliseconds duration_or_fail(const std::string& text, const char* option) {
  auto d = parse_duration(text);
  if (!d || d->count() <= 0)
    fail(std::string(option) + ": '" + text + "' is not a duration (examples: 500ms, 3s, 1min)", 2);
  return *d;
}

uint64_t size_or_fail(const std::string& text, const char* option) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
    ++i;
  const std::string unit = text.substr(i);
  uint64_t mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "KiB" || unit == "K" || unit == "k")
    mult = 1024;
  else if (unit == "MiB" || unit == "M")
    mult = 1024 * 1024;
  else if (unit == "KB")
    mult = 1000;
  else if (unit == "MB")
    mult = 1000 * 1000;
  if (i == 0 || i > 12 || mult == 0)
    fail(std::string(option) + ": '" + text + "' is not a size (examples: 1MiB, 512KiB, 65536)", 2);
  return std::stoull(text.substr(0, i)) * mult;
}

} // namespace orbitrain
