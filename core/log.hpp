// One-line log records for satellites and commands:
//   2026-12-04T20:40:00.123Z sat-1 INFO ready: listening on 127.0.0.1:4301 (pid 1234)
// Records go to stderr (or a chosen stream) whole, so lines from concurrent
// threads never interleave.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace orbitrain {

enum class LogLevel { debug, info, warn, error };

/// Sets the name printed in every record (the satellite id, or "ground").
void set_log_origin(std::string origin);
/// Records below `level` are dropped.
void set_log_level(LogLevel level);
/// Where records go (default stderr).
void set_log_stream(std::FILE* stream);

void log(LogLevel level, std::string_view message);

inline void log_info(std::string_view m) {
  log(LogLevel::info, m);
}
inline void log_warn(std::string_view m) {
  log(LogLevel::warn, m);
}
inline void log_error(std::string_view m) {
  log(LogLevel::error, m);
}

/// The text a satellite prints when it accepts connections; `orbitrain up`
/// and the tests wait for it.
inline constexpr std::string_view ready_marker = "ready: listening on ";

} // namespace orbitrain
