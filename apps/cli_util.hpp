// Helpers shared by the CLI commands: loading a constellation file or
// failing with every issue, and parsing durations and sizes given on the
// command line. Failures print "error: ..." and throw CLI::RuntimeError(2).
#pragma once

#include "core/config.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace orbitrain {

Constellation load_or_fail(const std::string& path);

std::chrono::milliseconds duration_or_fail(const std::string& text, const char* option);

/// "1MiB", "512KiB", "4MB", "65536" -> bytes.
uint64_t size_or_fail(const std::string& text, const char* option);

/// Prints "error: <message>" to stderr and throws CLI::RuntimeError(code).
[[noreturn]] void fail(const std::string& message, int code = 1);

} // namespace orbitrain
