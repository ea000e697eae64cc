// Child processes: output lines with deadlines, exit statuses, and that a
// child never outlives its owner.
#include "core/process.hpp"

#include <csignal>
#include <gtest/gtest.h>

using namespace orbitrain;
using namespace std::chrono_literals;

TEST(Process, ReadsLinesAndExitStatus) {
  auto c = Child::spawn({"/bin/sh", "-c", "echo one; echo two >&2; exit 3"});
  EXPECT_EQ(c.read_line(5s).value_or(""), "one");
  EXPECT_EQ(c.read_line(5s).value_or(""), "two");
  auto st = c.wait_for(5s);
  ASSERT_TRUE(st);
  EXPECT_EQ(describe_wait_status(*st), "exit 3");
}

TEST(Process, WaitForLineSkipsAndTimesOut) {
  auto c = Child::spawn({"/bin/sh", "-c", "echo a; echo 'b ready x'; exec sleep 30"});
  std::vector<std::string> seen;
  auto line = c.wait_for_line("ready", 5s, &seen);
  ASSERT_TRUE(line);
  EXPECT_EQ(*line, "b ready x");
  EXPECT_EQ(seen, std::vector<std::string>{"a"});
  EXPECT_FALSE(c.read_line(50ms)); // silent child: deadline, not a hang
  EXPECT_FALSE(c.wait_for(10ms));
  int st = c.stop(5s);
  EXPECT_EQ(describe_wait_status(st), "killed by SIGTERM");
}

TEST(Process, DestructorKillsRunningChild) {
  pid_t pid;
  {
    auto c = Child::spawn({"/bin/sh", "-c", "exec sleep 30"});
    pid = c.pid();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  // Reaped by the destructor: the pid no longer names our child.
  EXPECT_NE(::kill(pid, 0), 0);
}

TEST(Process, ExecFailureIsAnError) {
  EXPECT_THROW(Child::spawn({"/nonexistent/program"}), std::runtime_error);
}

TEST(Process, FreePortIsBindable) {
  uint16_t p = pick_free_port();
  EXPECT_GT(p, 0);
}
