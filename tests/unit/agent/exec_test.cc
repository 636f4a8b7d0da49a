// ksbox-agent exec behaviour, driven over a Unix socket: exit statuses,
// stdio streams, environment, cwd, argv, exec failures, signals.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "agent_harness.h"

namespace ksbox::agent_test {
namespace {

class AgentExecTest : public AgentTest {};

proto::Exited exited_normally(int code) { return {proto::Exited::kExitedNormally, code}; }

TEST_F(AgentExecTest, ReportsExitCodes) {
  for (int code : {0, 1, 42}) {
    auto c = run_exec(sock(), {"sh", "-c", "exit " + std::to_string(code)});
    ASSERT_TRUE(c->closed);
    EXPECT_FALSE(c->decode_failed);
    ASSERT_TRUE(c->hello);
    ASSERT_TRUE(c->started);
    EXPECT_GT(c->started->pid, 0u);
    ASSERT_TRUE(c->exited) << "code " << code;
    EXPECT_EQ(*c->exited, exited_normally(code));
    // Started first after Hello, Exited last.
    ASSERT_GE(c->order.size(), 3u);
    EXPECT_EQ(c->order[0], proto::MsgType::kHello);
    EXPECT_EQ(c->order[1], proto::MsgType::kStarted);
    EXPECT_EQ(c->order.back(), proto::MsgType::kExited);
  }
}

TEST_F(AgentExecTest, ReportsDeathBySignal) {
  auto c = run_exec(sock(), {"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->exited->kind, proto::Exited::kKilledBySignal);
  EXPECT_EQ(c->exited->value, SIGTERM);
  EXPECT_EQ(proto::shell_status(*c->exited), 143);
}

TEST_F(AgentExecTest, SeparatesStdoutAndStderr) {
  auto c = run_exec(sock(), {"sh", "-c", "echo to-out; echo to-err >&2; echo more-out"});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->out, "to-out\nmore-out\n");
  EXPECT_EQ(c->err, "to-err\n");
}

std::string all_bytes(int repeat) {
  std::string s;
  for (int r = 0; r < repeat; ++r)
    for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

TEST_F(AgentExecTest, BinaryDataIsByteExactBothWays) {
  const std::string data = all_bytes(3);
  auto c = run_exec(sock(), {"cat"}, {.stdin_data = data});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(*c->exited, exited_normally(0));
  EXPECT_EQ(c->out, data);

  auto e = run_exec(sock(), {"sh", "-c", "cat >&2"}, {.stdin_data = data});
  ASSERT_TRUE(e->exited);
  EXPECT_EQ(e->err, data);
  EXPECT_EQ(e->out, "");
}

TEST_F(AgentExecTest, StdinEofEndsInput) {
  // wc only prints once its stdin reaches EOF.
  auto c = run_exec(sock(), {"wc", "-c"}, {.stdin_data = "hello\nworld\n"});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(*c->exited, exited_normally(0));
  EXPECT_EQ(c->out, "12\n");
}

TEST_F(AgentExecTest, StdinClosedFlagGivesEofAtOnce) {
  proto::ExecRequest req;
  req.argv = {"cat"};
  req.flags = proto::kExecFlagStdinClosed;
  auto c = run_exec(sock(), req, {.send_eof = false, .timeout = 5s});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(*c->exited, exited_normally(0));
}

TEST_F(AgentExecTest, MovesTwentyMegabytesThroughHead) {
  std::string data(20 << 20, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  auto c = run_exec(sock(), {"head", "-c", std::to_string(data.size())}, {.stdin_data = data, .timeout = 30s});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(*c->exited, exited_normally(0));
  ASSERT_EQ(c->out.size(), data.size());
  EXPECT_TRUE(c->out == data);
}

TEST_F(AgentExecTest, ChildClosingStdinEarlyDropsTheRest) {
  // head exits after 1 MB; the other 9 MB of stdin have no reader.
  const std::string data(10 << 20, 'x');
  auto c = run_exec(sock(), {"head", "-c", "1000000"}, {.stdin_data = data, .timeout = 20s});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(*c->exited, exited_normally(0));
  EXPECT_EQ(c->out.size(), 1000000u);
}

TEST_F(AgentExecTest, StreamsHundredMegabytesOfOutput) {
  auto c = std::make_unique<TestConn>(sock());
  c->discard_output = true;
  proto::ExecRequest req;
  req.argv = {"head", "-c", "104857600", "/dev/zero"};
  c->send(proto::Hello{});
  c->send(req);
  c->send(proto::StdinEof{});
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c->pump_until_closed(60s));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(*c->exited, exited_normally(0));
  EXPECT_EQ(c->out_bytes, 104857600u);
  EXPECT_TRUE(c->out_all_zero);
  std::cout << "100 MiB of output in " << secs << " s (" << 100 / secs << " MiB/s)\n";
}

TEST_F(AgentExecTest, AppliesEnvironmentAndCwd) {
  TempDir work;
  proto::ExecRequest req;
  req.argv = {"sh", "-c", "echo \"$FOO|$BAR|$PATH|${TERM-unset}\"; pwd"};
  req.env = {"FOO=bar baz", "BAR=", "PATH=/bin:/usr/bin"};
  req.cwd = work.path();
  auto c = run_exec(sock(), req);
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(*c->exited, exited_normally(0));
  char real[PATH_MAX];
  ASSERT_NE(::realpath(work.path().c_str(), real), nullptr);
  EXPECT_EQ(c->out, "bar baz||/bin:/usr/bin|unset\n" + std::string(real) + "\n");
}

TEST_F(AgentExecTest, BaseEnvironmentAndDefaultCwd) {
  auto c = run_exec(sock(), {"sh", "-c", "echo \"$PATH|$HOME|$SHELL\"; pwd; env | wc -l"});
  ASSERT_TRUE(c->exited);
  const std::string home = ::getuid() == 0 ? "/root" : "";  // the tests run as root in CI
  std::istringstream lines(c->out);
  std::string env_line, cwd, count;
  std::getline(lines, env_line);
  std::getline(lines, cwd);
  EXPECT_TRUE(env_line.starts_with("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|")) << env_line;
  // The agent's own environment is not passed on: only the base variables
  // (PATH HOME USER LOGNAME SHELL) plus what sh itself exports (PWD, SHLVL...).
  std::getline(lines, count);
  EXPECT_LT(std::stoi(count), 10) << c->out;
  struct stat st {};
  if (::stat("/workspace", &st) == 0 && S_ISDIR(st.st_mode)) {
    EXPECT_EQ(cwd, "/workspace");
  } else if (!home.empty()) {
    EXPECT_EQ(cwd, home);
  }
}

TEST_F(AgentExecTest, PreservesArgvWithSpacesAndEmptyStrings) {
  auto c = run_exec(sock(), {"printf", "[%s]\\n", "a b", "", "  c  ", "d\te"});
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->out, "[a b]\n[]\n[  c  ]\n[d\te]\n");
}

TEST_F(AgentExecTest, SwitchesToTheRequestedIds) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root (the agent runs as root in the guest)";
  proto::ExecRequest req;
  req.argv = {"sh", "-c", "id -u; id -g; id -G; echo \"$HOME|${USER-unset}\"; pwd"};
  req.uid = 12345;  // no passwd entry: HOME=/, no USER, cwd falls back to /
  req.gid = 23456;
  auto c = run_exec(sock(), req);
  ASSERT_TRUE(c->exited) << c->err;
  EXPECT_EQ(c->out, "12345\n23456\n23456\n/|unset\n/\n");

  req.gid = proto::kDefaultId;  // an unknown uid without gid: the same number
  c = run_exec(sock(), req);
  ASSERT_TRUE(c->exited);
  EXPECT_TRUE(c->out.starts_with("12345\n12345\n")) << c->out;
}

TEST_F(AgentExecTest, UnreachableCwdForTheUserIsAnError) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root";
  TempDir d;
  ::chmod(d.path().c_str(), 0700);  // root's only
  proto::ExecRequest req;
  req.argv = {"true"};
  req.uid = 12345;
  req.cwd = d.path();
  auto c = run_exec(sock(), req);
  ASSERT_TRUE(c->error);
  EXPECT_EQ(c->error->code, static_cast<uint32_t>(EACCES));
}

TEST_F(AgentExecTest, CommandNotFoundIsAnErrorNotStarted) {
  auto c = run_exec(sock(), {"no-such-command-ksbox"});
  ASSERT_TRUE(c->closed);
  EXPECT_FALSE(c->started);
  EXPECT_FALSE(c->exited);
  ASSERT_TRUE(c->error);
  EXPECT_EQ(c->error->code, static_cast<uint32_t>(ENOENT));
  EXPECT_EQ(c->error->message, "cannot run 'no-such-command-ksbox': No such file or directory");
}

TEST_F(AgentExecTest, NotExecutableIsEacces) {
  TempDir d;
  const std::string script = d.path() + "/not-exec";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  ::chmod(script.c_str(), 0644);
  auto c = run_exec(sock(), {script});
  ASSERT_TRUE(c->error);
  EXPECT_EQ(c->error->code, static_cast<uint32_t>(EACCES));
  EXPECT_FALSE(c->started);
}

TEST_F(AgentExecTest, BadCwdIsAnError) {
  proto::ExecRequest req;
  req.argv = {"true"};
  req.cwd = "/no/such/dir";
  auto c = run_exec(sock(), req);
  ASSERT_TRUE(c->error);
  EXPECT_EQ(c->error->code, static_cast<uint32_t>(ENOENT));
  EXPECT_EQ(c->error->message, "cannot change directory to '/no/such/dir': No such file or directory");
}

TEST_F(AgentExecTest, ForwardsSignalsToTheProcessGroup) {
  TestConn c(sock());
  ASSERT_TRUE(c.start_exec({"sleep", "100"}));
  c.send(proto::Signal{SIGINT});
  ASSERT_TRUE(c.pump_until_closed(5s));
  ASSERT_TRUE(c.exited);
  EXPECT_EQ(c.exited->kind, proto::Exited::kKilledBySignal);
  EXPECT_EQ(c.exited->value, SIGINT);
}

TEST_F(AgentExecTest, SignalReachesGrandchildrenInTheGroup) {
  TestConn c(sock());
  // sh waits for its child; SIGTERM to the whole group ends both.
  ASSERT_TRUE(c.start_exec({"sh", "-c", "trap 'exit 7' TERM; sleep 100 & wait"}));
  std::this_thread::sleep_for(100ms);  // let sh install its trap
  c.send(proto::Signal{SIGTERM});
  ASSERT_TRUE(c.pump_until_closed(5s));
  ASSERT_TRUE(c.exited);
  EXPECT_EQ(*c.exited, exited_normally(7));
}

TEST_F(AgentExecTest, ShutdownIsRefusedOutsidePid1) {
  TestConn c(sock());
  c.send(proto::Hello{});
  c.send(proto::Shutdown{});
  ASSERT_TRUE(c.pump_until_closed(5s));
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->code, proto::kErrBadRequest);
  EXPECT_TRUE(agent_.alive());
  auto ok = run_exec(sock(), {"true"});
  ASSERT_TRUE(ok->exited);
}

TEST_F(AgentExecTest, RefusesUnsupportedProtocolVersions) {
  TestConn c(sock());
  c.send(proto::Hello{5, 9});
  ASSERT_TRUE(c.pump_until_closed(5s));
  ASSERT_TRUE(c.hello);
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->code, proto::kErrUnsupported);
}

}  // namespace
}  // namespace ksbox::agent_test
