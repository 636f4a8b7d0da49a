// End-to-end PTY mode (`exec -t`, `attach`) on a pseudo-terminal pair, and
// `ksbox stop`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/ioctl.h>

#include <atomic>
#include <future>
#include <thread>

#include "cli_process.h"
#include "cli_test_util.h"
#include "fake_vmm.h"

namespace ksbox::cli::testing {
namespace {

using namespace std::chrono_literals;
namespace proto = ksbox::protocol;
using Clock = std::chrono::steady_clock;

// ksbox with the pty slave as its stdin/stdout/stderr and controlling terminal.
SpawnOptions on_pty(const Pty& pty, std::vector<std::string> args) {
  return {.args = std::move(args),
          .stdin_fd = pty.slave.get(),
          .stdout_fd = pty.slave.get(),
          .stderr_fd = pty.slave.get(),
          .new_session_ctty = true};
}

TEST(Attach, RefusesWithoutATerminal) {
  FakeVmm vmm([](AgentConn&) {});
  const CliRun r = run_cli({"attach", "-s", vmm.socket_path()});
  EXPECT_EQ(r.status(), 2);
  EXPECT_EQ(r.err, "ksbox: attach needs a terminal; use `ksbox exec` for scripts\n");
  EXPECT_EQ(vmm.accepted() + vmm.refused(), 0);
}

TEST(Attach, RunsALoginShellRawAndDetachesOnCtrlBracket) {
  Pty pty = open_pty(33, 101);
  const termios before = term_attrs(pty.slave.get());
  proto::ExecRequest req;
  Bytes typed;
  bool closed = false;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    a.send_stdout(bytes_of("remote$ "));
    // Everything typed until the CLI hangs up.
    while (auto f = a.read_frame()) {
      if (f->type == proto::MsgType::kStdinData) typed.insert(typed.end(), f->payload.begin(), f->payload.end());
    }
    closed = true;
  });
  CliProcess p(on_pty(pty, {"attach", "-s", vmm.socket_path(), "-u", "1000", "-w", "/home/agent"}));
  const std::string prompt = read_until(pty.master.get(), "remote$ ");
  ASSERT_TRUE(contains(prompt, "remote$ ")) << prompt;
  EXPECT_TRUE(is_raw(term_attrs(pty.slave.get())));
  const std::string keys = "ls\x03\r\x1d";  // ^C is just a byte in raw mode
  ASSERT_EQ(::write(pty.master.get(), keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  const CliRun r = p.wait();
  EXPECT_EQ(r.status(), 0);
  const std::string tail = read_until(pty.master.get(), "detached\r\n");
  EXPECT_TRUE(contains(tail, "\r\nksbox: detached\r\n")) << tail;
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before)) << "terminal left raw";
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_TRUE(closed);
  EXPECT_EQ(std::string(typed.begin(), typed.end()), "ls\x03\r");
  EXPECT_EQ(req.argv, (std::vector<std::string>{"/bin/sh", "-l"}));
  EXPECT_TRUE(req.pty());
  EXPECT_EQ(req.rows, 33);
  EXPECT_EQ(req.cols, 101);
  EXPECT_EQ(req.uid, 1000u);
  EXPECT_EQ(req.cwd, "/home/agent");
}

TEST(Attach, ExitsWithTheShellsStatusAndCustomCommand) {
  Pty pty = open_pty(24, 80);
  const termios before = term_attrs(pty.slave.get());
  proto::ExecRequest req;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    a.send_stdout(bytes_of("bye\r\n"));
    a.exit_with(7);
  });
  CliProcess p(on_pty(pty, {"attach", "-s", vmm.socket_path(), "--detach-key", "none", "--", "/bin/bash", "-i"}));
  const CliRun r = p.wait();
  EXPECT_EQ(r.status(), 7);
  EXPECT_TRUE(contains(read_until(pty.master.get(), "bye"), "bye"));
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before));
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_EQ(req.argv, (std::vector<std::string>{"/bin/bash", "-i"}));
}

TEST(ExecTty, SendsTheSizeAndResizesOnSigwinch) {
  Pty pty = open_pty(30, 90);
  const termios before = term_attrs(pty.slave.get());
  std::promise<void> started;
  proto::ExecRequest req;
  std::optional<proto::Resize> resize;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    started.set_value();
    while (auto f = a.read_frame()) {
      proto::Resize rs;
      if (proto::decode(*f, rs) == proto::ProtoError::kOk) {
        resize = rs;
        break;
      }
    }
    a.exit_with(3);
  });
  CliProcess p(on_pty(pty, {"exec", "-t", "-s", vmm.socket_path(), "--", "top"}));
  ASSERT_EQ(started.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(is_raw(term_attrs(pty.slave.get())));
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 120;
  ASSERT_EQ(::ioctl(pty.master.get(), TIOCSWINSZ, &ws), 0);  // the kernel sends SIGWINCH
  const CliRun r = p.wait();
  EXPECT_EQ(r.status(), 3);
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before)) << "terminal left raw";
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_TRUE(req.pty());
  EXPECT_EQ(req.rows, 30);
  EXPECT_EQ(req.cols, 90);
  ASSERT_TRUE(resize.has_value());
  EXPECT_EQ(resize->rows, 40);
  EXPECT_EQ(resize->cols, 120);
}

TEST(ExecTty, SigtermIsForwardedAndTheTerminalRestored) {
  Pty pty = open_pty(24, 80);
  const termios before = term_attrs(pty.slave.get());
  std::promise<void> started;
  std::atomic<int> got{0};
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    started.set_value();
    while (auto f = a.read_frame()) {
      proto::Signal s;
      if (proto::decode(*f, s) == proto::ProtoError::kOk) {
        got = s.signo;
        break;
      }
    }
    a.killed_by(SIGTERM);
  });
  CliProcess p(on_pty(pty, {"exec", "--tty", "-s", vmm.socket_path(), "--", "vi"}));
  ASSERT_EQ(started.get_future().wait_for(5s), std::future_status::ready);
  ASSERT_TRUE(is_raw(term_attrs(pty.slave.get())));
  ASSERT_EQ(::kill(p.pid(), SIGTERM), 0);
  const CliRun r = p.wait();
  EXPECT_EQ(got.load(), SIGTERM);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.status(), 128 + SIGTERM);
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before)) << "terminal left raw";
}

TEST(ExecTty, ConnectionLossRestoresTheTerminal) {
  Pty pty = open_pty(24, 80);
  const termios before = term_attrs(pty.slave.get());
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    std::this_thread::sleep_for(100ms);
  });  // closes without Exited
  CliProcess p(on_pty(pty, {"exec", "-t", "-s", vmm.socket_path(), "--", "sh"}));
  const CliRun r = p.wait();
  EXPECT_EQ(r.status(), 255);
  EXPECT_TRUE(contains(read_until(pty.master.get(), "lost"), "connection to the agent was lost"));
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before)) << "terminal left raw";
}

TEST(ExecTty, WithoutATerminalUses24x80AndNoRawMode) {
  proto::ExecRequest req;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    a.exit_with(0);
  });
  EXPECT_EQ(run_cli({"exec", "-t", "-s", vmm.socket_path(), "--", "sh"}).status(), 0);
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_TRUE(req.pty());
  EXPECT_EQ(req.rows, 24);
  EXPECT_EQ(req.cols, 80);
}

// The fake agent for stop: Hello, then Shutdown, then "power off": the
// connection closes and, after `exit_after`, the socket goes away.
struct StopAgent {
  std::atomic<bool> got_shutdown{false};
  std::atomic<FakeVmm*> vmm{nullptr};
  milliseconds exit_after;
  bool exits = true;

  void operator()(AgentConn& a) {
    a.expect<proto::Hello>();
    a.send(proto::Hello{});
    a.expect<proto::Shutdown>();
    got_shutdown = true;
    ::shutdown(a.fd(), SHUT_RDWR);
    if (!exits) return;
    std::this_thread::sleep_for(exit_after);
    vmm.load()->close_listener();
  }
};

TEST(Stop, SendsShutdownAndWaitsUntilTheSocketIsGone) {
  StopAgent agent{.exit_after = 150ms};
  FakeVmm vmm([&](AgentConn& a) { agent(a); });
  agent.vmm = &vmm;
  const auto start = Clock::now();
  const CliRun r = run_cli({"stop", "-s", vmm.socket_path(), "--timeout", "5"});
  EXPECT_EQ(r.status(), 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(agent.got_shutdown);
  EXPECT_GE(Clock::now() - start, 150ms);  // it waited for the VMM to exit
  EXPECT_GE(vmm.probes(), 1);              // probing while the VMM was still there
  EXPECT_EQ(vmm.accepted(), 1);
}

TEST(Stop, FailsWhenTheVmDoesNotGoAway) {
  StopAgent agent{.exit_after = 0ms, .exits = false};
  FakeVmm vmm([&](AgentConn& a) { agent(a); });
  agent.vmm = &vmm;
  const auto start = Clock::now();
  const CliRun r = run_cli({"stop", "-s", vmm.socket_path(), "--timeout", "0.4"});
  EXPECT_EQ(r.status(), 1);
  EXPECT_TRUE(agent.got_shutdown);
  EXPECT_TRUE(contains(r.err, "did not exit within 0.4 s")) << r.err;
  EXPECT_GE(Clock::now() - start, 400ms);
  EXPECT_LT(Clock::now() - start, 2000ms);
}

TEST(Stop, FailsAtOnceWhenNoVmListens) {
  const auto start = Clock::now();
  const CliRun r = run_cli({"stop", "-s", "/nonexistent/vm.sock"});
  EXPECT_EQ(r.status(), 1);
  EXPECT_TRUE(contains(r.err, "No such file or directory")) << r.err;
  EXPECT_LT(Clock::now() - start, 1000ms);
}

TEST(Stop, AgentErrorIsReported) {
  FakeVmm vmm([](AgentConn& a) {
    a.expect<proto::Hello>();
    a.send(proto::ErrorMsg{proto::kErrUnsupported, "no common protocol version"});
  });
  const CliRun r = run_cli({"stop", "-s", vmm.socket_path(), "--timeout", "2"});
  EXPECT_EQ(r.status(), 1);
  EXPECT_TRUE(contains(r.err, "no common protocol version")) << r.err;
}

}  // namespace
}  // namespace ksbox::cli::testing
