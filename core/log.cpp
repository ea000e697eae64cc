// Implementation of log.hpp.
#include "core/log.hpp"

#include <chrono>
#include <ctime>
#include <mutex>

namespace orbitrain {

namespace {

std::mutex mtx;
std::string origin = "orbitrain";
LogLevel threshold = LogLevel::info;
std::FILE* stream = nullptr;

const char* name(LogLevel l) {
  switch (l) {
  case LogLevel::debug:
    return "DEBUG";
  case LogLevel::info:
    return "INFO";
  case LogLevel::warn:
    return "WARN";
  case LogLevel::error:
    return "ERROR";
  }
  return "?";
}

} // namespace

void set_log_origin(std::string o) {
  std::lock_guard<std::mutex> g(mtx);
  origin = std::move(o);
}

void set_log_level(LogLevel l) {
  std::lock_guard<std::mutex> g(mtx);
  threshold = l;
}

void set_log_stream(std::FILE* s) {
  std::lock_guard<std::mutex> g(mtx);
  stream = s;
}

void log(LogLevel level, std::string_view message) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard<std::mutex> g(mtx);
  if (level < threshold)
    return;
  std::FILE* out = stream ? stream : stderr;
  std::fprintf(out, "%s.%03dZ %s %s %.*s\n", stamp, static_cast<int>(ms), origin.c_str(),
               name(level), static_cast<int>(message.size()), message.data());
  std::fflush(out);
}

} // namespace orbitrain
