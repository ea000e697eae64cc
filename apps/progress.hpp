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

} // namespace orbitrain
