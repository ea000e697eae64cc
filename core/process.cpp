// Implementation of process.hpp with fork/exec, pipes, pidfds and poll.
#include "core/process.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace orbitrain {

namespace {

using clock = std::chrono::steady_clock;

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int remaining_ms(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), INT_MAX));
}

} // namespace

Child Child::spawn(const std::vector<std::string>& argv) {
  if (argv.empty())
    throw std::runtime_error("cannot start a process without a program");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed: " + std::string(std::strerror(errno)));
  // An exec failure is reported through a second close-on-exec pipe.
  int errp[2];
  if (::pipe2(errp, O_CLOEXEC) != 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error("pipe failed: " + std::string(std::strerror(errno)));
  }
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {fds[0], fds[1], errp[0], errp[1]})
      ::close(fd);
    throw std::runtime_error("fork failed: " + std::string(std::strerror(e)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent)
      ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::execv(args[0], args.data());
    int e = errno;
    ssize_t ignored = ::write(errp[1], &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  }
  ::close(fds[1]);
  ::close(errp[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(errp[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  ::close(errp[0]);
  Child c;
  c.pid_ = pid;
  c.out_fd_ = fds[0];
  c.pid_fd_ = pidfd_open(pid);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    c.wait_for(std::chrono::seconds(5));
    throw std::runtime_error("cannot execute " + argv[0] + ": " + std::strerror(exec_errno));
  }
  if (c.pid_fd_ < 0)
    throw std::runtime_error("pidfd_open failed: " + std::string(std::strerror(errno)));
  ::fcntl(c.out_fd_, F_SETFL, ::fcntl(c.out_fd_, F_GETFL) | O_NONBLOCK);
  return c;
}

Child::Child(Child&& other) noexcept {
  *this = std::move(other);
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    release();
    pid_ = std::exchange(other.pid_, -1);
    out_fd_ = std::exchange(other.out_fd_, -1);
    pid_fd_ = std::exchange(other.pid_fd_, -1);
    out_eof_ = other.out_eof_;
    buffer_ = std::move(other.buffer_);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

Child::~Child() {
  release();
}

void Child::release() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  if (out_fd_ >= 0)
    ::close(out_fd_);
  if (pid_fd_ >= 0)
    ::close(pid_fd_);
  pid_ = -1;
  out_fd_ = -1;
  pid_fd_ = -1;
  out_eof_ = false;
  buffer_.clear();
  status_.reset();
}

bool Child::fill(std::chrono::milliseconds timeout) {
  if (out_eof_ || out_fd_ < 0)
    return false;
  pollfd p{out_fd_, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0)
    return false;
  char buf[4096];
  ssize_t n = ::read(out_fd_, buf, sizeof buf);
  if (n > 0) {
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }
  if (n == 0 || (errno != EAGAIN && errno != EINTR))
    out_eof_ = true;
  return n != 0;
}

std::optional<std::string> Child::take_line() {
  auto pos = buffer_.find('\n');
  if (pos == std::string::npos) {
    if (out_eof_ && !buffer_.empty())
      return std::exchange(buffer_, std::string());
    return std::nullopt;
  }
  std::string line = buffer_.substr(0, pos);
  buffer_.erase(0, pos + 1);
  return line;
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    if (auto line = take_line())
      return line;
    if (out_eof_)
      return std::nullopt;
    int left = remaining_ms(deadline);
    fill(std::chrono::milliseconds(left));
    if (left == 0 && buffer_.find('\n') == std::string::npos && !out_eof_)
      return take_line();
  }
}

std::vector<std::string> Child::drain_lines() {
  while (fill(std::chrono::milliseconds(0))) {
  }
  std::vector<std::string> lines;
  while (auto l = take_line())
    lines.push_back(std::move(*l));
  return lines;
}

std::optional<std::string> Child::wait_for_line(const std::string& marker,
                                                std::chrono::milliseconds timeout,
                                                std::vector<std::string>* seen) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    auto line = read_line(std::chrono::milliseconds(remaining_ms(deadline)));
    if (!line)
      return std::nullopt;
    if (line->find(marker) != std::string::npos)
      return line;
    if (seen)
      seen->push_back(std::move(*line));
  }
}

void Child::signal(int sig) const {
  if (pid_ > 0 && !status_)
    ::kill(pid_, sig);
}

std::optional<int> Child::wait_for(std::chrono::milliseconds timeout) {
  if (status_)
    return status_;
  if (pid_ <= 0)
    return std::nullopt;
  if (pid_fd_ >= 0) {
    pollfd p{pid_fd_, POLLIN, 0};
    auto deadline = clock::now() + timeout;
    int r;
    do {
      r = ::poll(&p, 1, remaining_ms(deadline));
    } while (r < 0 && errno == EINTR);
    if (r == 0)
      return std::nullopt;
  }
  int st = 0;
  pid_t w;
  do {
    rusage ru{};
    w = ::wait4(pid_, &st, pid_fd_ >= 0 ? 0 : WNOHANG, &ru);
    if (w == pid_)
      max_rss_kib_ = ru.ru_maxrss;
  } while (w < 0 && errno == EINTR);
  if (w == pid_)
    status_ = st;
  return status_;
}

int Child::stop(std::chrono::milliseconds grace) {
  if (status_)
    return *status_;
  signal(SIGTERM);
  if (auto st = wait_for(grace))
    return *st;
  signal(SIGKILL);
  return wait_for(std::chrono::hours(1)).value_or(-1);
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status))
    return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = ::sigabbrev_np(WTERMSIG(status));
    return std::string("killed by SIG") + (name ? name : std::to_string(WTERMSIG(status)).c_str());
  }
  return "status " + std::to_string(status);
}

std::string self_executable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

uint16_t pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::runtime_error("socket failed: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot find a free port: " + std::string(std::strerror(e)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

} // namespace orbitrain
