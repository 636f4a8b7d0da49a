// ksbox-agent PTY mode: the child gets a terminal of the requested size,
// Resize changes it, StdinEof sends ^D.
#include <gtest/gtest.h>

#include "agent_harness.h"

namespace ksbox::agent_test {
namespace {

class AgentPtyTest : public AgentTest {};

proto::ExecRequest pty_request(std::vector<std::string> argv, uint16_t rows = 0, uint16_t cols = 0) {
  proto::ExecRequest req;
  req.argv = std::move(argv);
  req.flags = proto::kExecFlagPty;
  req.rows = rows;
  req.cols = cols;
  return req;
}

TEST_F(AgentPtyTest, ChildRunsOnAPseudoTerminal) {
  auto c = run_exec(sock(), pty_request({"sh", "-c", "tty; echo \"$TERM\"; echo err >&2"}));
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->exited->value, 0);
  EXPECT_TRUE(c->out.starts_with("/dev/pts/")) << c->out;
  // stderr shares the terminal; the line discipline turns \n into \r\n.
  EXPECT_NE(c->out.find("\r\nxterm-256color\r\nerr\r\n"), std::string::npos) << c->out;
  EXPECT_EQ(c->err, "");
}

TEST_F(AgentPtyTest, ChildHasTheTerminalAsControllingTty) {
  // /dev/tty opens only for a process with a controlling terminal.
  auto c = run_exec(sock(), pty_request({"sh", "-c", "echo via-tty >/dev/tty"}));
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->exited->value, 0) << c->out;
  EXPECT_EQ(c->out, "via-tty\r\n");
}

TEST_F(AgentPtyTest, DefaultSizeIs24x80) {
  auto c = run_exec(sock(), pty_request({"stty", "size"}));
  ASSERT_TRUE(c->exited);
  EXPECT_EQ(c->out, "24 80\r\n");
}

TEST_F(AgentPtyTest, AppliesInitialSizeAndResize) {
  TestConn c(sock());
  c.send(proto::Hello{});
  c.send(pty_request({"sh", "-c", "stty size; read x; stty size"}, 30, 100));
  ASSERT_TRUE(c.pump_until([&] { return c.out.find("30 100\r\n") != std::string::npos; }, 5s)) << c.out;
  c.send(proto::Resize{50, 132});
  c.send_stdin("go\n");
  ASSERT_TRUE(c.pump_until_closed(5s));
  ASSERT_TRUE(c.exited);
  EXPECT_EQ(c.exited->value, 0);
  EXPECT_NE(c.out.find("50 132\r\n"), std::string::npos) << c.out;
}

TEST_F(AgentPtyTest, StdinEofSendsControlD) {
  // cat on a canonical-mode terminal: the line, then ^D at the start of the
  // next line reads as EOF and cat exits.
  auto c = run_exec(sock(), pty_request({"cat"}), {.stdin_data = "hello\n", .timeout = 5s});
  ASSERT_TRUE(c->exited) << c->out;
  EXPECT_EQ(c->exited->value, 0);
  // The echo of the input, then cat's copy of it.
  EXPECT_EQ(c->out, "hello\r\nhello\r\n");
}

TEST_F(AgentPtyTest, SignalsReachTheForegroundJob) {
  TestConn c(sock());
  ASSERT_TRUE(c.start_exec(pty_request({"sleep", "100"})));
  c.send(proto::Signal{SIGINT});
  ASSERT_TRUE(c.pump_until_closed(5s));
  ASSERT_TRUE(c.exited);
  EXPECT_EQ(c.exited->kind, proto::Exited::kKilledBySignal);
  EXPECT_EQ(c.exited->value, SIGINT);
}

}  // namespace
}  // namespace ksbox::agent_test
