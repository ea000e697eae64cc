// Implementation of progress.hpp.
#include "apps/progress.hpp"

#include "apps/status_view.hpp"

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

namespace orbitrain {

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(uint64_t done, uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int decile = static_cast<int>(frac * 10);
  if (tty_) {
    if (done < total && now - last_draw_ < std::chrono::milliseconds(100))
      return;
  } else if (decile == last_decile_) {
    return;
  }
  last_draw_ = now;
  last_decile_ = decile;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  const int width = 24;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '.');
  std::string line = fmt::format("{} [{}] {}/{} {:.1f} MB/s ETA {}:{:02}", label_, bar,
                                 human_bytes(done), human_bytes(total), rate / 1e6,
                                 static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
  if (tty_)
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (tty_ && drawn_)
    std::fprintf(stderr, "\n");
}

StepBar::StepBar() : tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

void StepBar::update(uint64_t done, uint64_t total, const std::string& text) {
  if (!tty_)
    return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total && now - last_draw_ < std::chrono::milliseconds(100))
    return;
  last_draw_ = now;
  const double frac = total ? std::min(1.0, double(done) / double(total)) : 1.0;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double eta = done ? secs / double(done) * double(total - std::min(done, total)) : 0;
  const int width = 24, filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '.');
  last_ = fmt::format("[{}] step {}/{} {} ETA {}:{:02}", bar, done, total, text,
                      static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
  std::fprintf(stderr, "\r%s\033[K", last_.c_str());
  std::fflush(stderr);
}

void StepBar::clear() {
  if (tty_ && !last_.empty()) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
}

void StepBar::finish() {
  clear(); // the step lines on stdout tell the story
  last_.clear();
}

} // namespace orbitrain
