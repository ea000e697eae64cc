// A one-line progress bar on stderr: "[#####.....] 12.0/20.0 MiB 85.3 MB/s ETA 0:01".
// On a terminal it redraws in place (at most 10 times a second); otherwise
// it prints a plain line at every tenth of the work, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace orbitrain {

class ProgressBar {
public:
  explicit ProgressBar(std::string label);
  void update(uint64_t done, uint64_t total);
  /// Ends the line (on a terminal).
  void finish();

private:
  std::string label_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  int last_decile_ = -1;
  bool drawn_ = false;
};

/// A training step bar on stderr, for terminals only (logs get the step
/// lines): "[########........] step 120/600 loss 2.310 val 2.402 11.2k tok/s
/// ETA 1:05", redrawn in place at most 10 times a second. Call clear()
/// before printing a line to stdout, so the two do not mix.
class StepBar {
public:
  StepBar();
  void update(uint64_t done, uint64_t total, const std::string& text);
  void clear();
  void finish(); // removes the bar

private:
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::string last_;
};

} // namespace orbitrain
