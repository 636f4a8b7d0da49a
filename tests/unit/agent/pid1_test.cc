// ksbox-agent as PID 1, in a user + PID + mount + UTS namespace (no VM, no
// real root needed): it reaps orphans, sets the hostname and honours
// Shutdown, whose reboot() ends just that namespace. Skipped where
// unprivileged user namespaces are not available.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "agent_harness.h"

namespace ksbox::agent_test {
namespace {

// --kill-child: the namespace (the agent and all it started) dies with
// unshare, which the harness kills at the end of each test.
const std::vector<std::string> kUnshare = {"unshare", "--user",  "--map-root-user", "--pid",      "--fork",
                                           "--mount", "--uts",   "--mount-proc",    "--kill-child"};

bool namespaces_available() {
  static const bool ok = [] {
    std::string cmd;
    for (const auto& a : kUnshare) cmd += a + " ";
    return std::system((cmd + "true >/dev/null 2>&1").c_str()) == 0;
  }();
  return ok;
}

std::string unique_abstract_name() {
  static std::atomic<int> n{0};
  return "@ksbox-agent-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

class AgentPid1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!namespaces_available()) GTEST_SKIP() << "no unprivileged user/PID namespaces here";
    agent_ = std::make_unique<AgentProcess>(kUnshare, unique_abstract_name(), std::vector<std::string>{"--pid1"});
    // unshare forks the agent: PID 1 inside, a child of unshare outside.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto kids = children_of(agent_->pid());
      if (kids.size() == 1) {
        init_pid_ = kids[0];
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_GT(init_pid_, 0);
  }
  void TearDown() override {
    if (!agent_) return;
    if (HasFailure()) std::cerr << "agent log:\n" << agent_->log();
    // unshare ignores SIGTERM while it waits; a Shutdown ends the namespace
    // from inside, so unshare reaps the agent and exits by itself.
    if (agent_->alive()) {
      TestConn c(agent_->socket_path());
      c.send(proto::Hello{});
      c.send(proto::Shutdown{});
      c.pump_until_closed(3s);
      const auto deadline = std::chrono::steady_clock::now() + 3s;
      while (agent_->alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    }
  }
  std::unique_ptr<AgentProcess> agent_;
  pid_t init_pid_ = -1;  // the agent, seen from the test's namespace
};

TEST_F(AgentPid1Test, IsInitOfItsNamespace) {
  auto c = run_exec(agent_->socket_path(), {"sh", "-c", "echo $PPID; hostname"});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->out, "1\nksbox\n");
}

TEST_F(AgentPid1Test, ReapsOrphans) {
  // Without a subreaper the orphaned sleeps go to PID 1, the agent.
  auto c = run_exec(agent_->socket_path(), {"sh", "-c", "for i in 1 2 3 4 5; do sleep 0.1 & done; exit 0"});
  ASSERT_TRUE(c->exited);
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  std::this_thread::sleep_for(300ms);
  while (!zombies_of(init_pid_).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(zombies_of(init_pid_), std::vector<pid_t>{});
  EXPECT_TRUE(agent_->alive());
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

TEST_F(AgentPid1Test, RestartsInPlaceAfterACrash) {
  // PID 1 must never die: a fatal signal re-executes the agent, same pid.
  ASSERT_EQ(::kill(init_pid_, SIGSEGV), 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (count(agent_->log(), "ksbox-agent: ready on") < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(count(agent_->log(), "ksbox-agent: ready on"), 2u);
  EXPECT_NE(agent_->log().find("fatal signal; restarting"), std::string::npos);
  EXPECT_TRUE(process_running(init_pid_));
  auto c = run_exec(agent_->socket_path(), {"sh", "-c", "echo $PPID"});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->out, "1\n");
}

TEST_F(AgentPid1Test, ShutdownEndsTheNamespace) {
  // A running session does not hold the shutdown up.
  TestConn running(agent_->socket_path());
  proto::ExecRequest req;
  req.argv = {"sleep", "100"};
  running.send(proto::Hello{});
  running.send(req);
  ASSERT_TRUE(running.pump_until([&] { return running.started.has_value(); }, 5s));

  TestConn c(agent_->socket_path());
  c.send(proto::Hello{});
  c.send(proto::Shutdown{});
  ASSERT_TRUE(c.pump_until_closed(5s));
  EXPECT_FALSE(c.error);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (agent_->alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(agent_->alive());
  EXPECT_TRUE(running.pump_until_closed(2s));
  EXPECT_NE(agent_->log().find("ksbox-agent: shutting down"), std::string::npos);
  // reboot() in a PID namespace kills its init with SIGHUP (for a restart);
  // unshare passes that on.
  const int st = *agent_->exit_status();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGHUP) << "wait status " << st;
}

}  // namespace
}  // namespace ksbox::agent_test
