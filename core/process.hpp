// Child processes for the commands that run satellites on this host
// (`orbitrain up`, `orbitrain demo`) and for the integration tests.
//
// A Child is started with its stdout and stderr on one pipe, read line by
// line with a deadline; it is placed in the parent's death signal list
// (PR_SET_PDEATHSIG), so it gets SIGTERM if the parent dies, even by SIGKILL.
// Waiting uses a pidfd, so a deadline never needs a sleep loop. The
// destructor kills (SIGKILL) and reaps a child that is still running: no
// process outlives its owner.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace orbitrain {

class Child {
public:
  /// Starts argv[0] (a path) with `argv`. Throws std::runtime_error naming
  /// the program when the fork or exec fails.
  static Child spawn(const std::vector<std::string>& argv);

  Child() = default;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_; }

  /// Fd that becomes readable when the child has output (for poll()).
  int output_fd() const { return out_fd_; }
  /// Fd that becomes readable when the child has exited (for poll()).
  int exit_fd() const { return pid_fd_; }

  /// The next line of output (without '\n'), waiting at most `timeout`.
  /// nullopt on timeout or end of output.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  /// Reads what is available now without blocking; complete lines are
  /// returned, a partial line stays buffered. At end of output the partial
  /// line is returned too.
  std::vector<std::string> drain_lines();
  /// True once the child's output pipe reached end of file.
  bool output_closed() const { return out_eof_; }

  /// Waits for the first line containing `marker`; the lines read before it
  /// are appended to `seen`. nullopt on timeout or if the child exits first.
  std::optional<std::string> wait_for_line(const std::string& marker,
                                           std::chrono::milliseconds timeout,
                                           std::vector<std::string>* seen = nullptr);

  void signal(int sig) const;

  /// Waits at most `timeout` for the child to exit; returns its wait status
  /// (as from waitpid), or nullopt if it still runs.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);

  /// Peak resident memory of the exited child, in KiB (0 before it exited).
  long max_rss_kib() const { return max_rss_kib_; }

  /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the wait status.
  int stop(std::chrono::milliseconds grace);

private:
  // Kills and reaps a running child, closes the fds; leaves an empty Child.
  void release();
  bool fill(std::chrono::milliseconds timeout);
  std::optional<std::string> take_line();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int pid_fd_ = -1;
  bool out_eof_ = false;
  std::string buffer_;
  std::optional<int> status_;
  long max_rss_kib_ = 0;
};

/// Describes a wait status: "exit 0", "killed by SIGKILL".
std::string describe_wait_status(int status);

/// Path of the running executable (/proc/self/exe).
std::string self_executable();

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
uint16_t pick_free_port();

} // namespace orbitrain
