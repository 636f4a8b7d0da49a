// End-to-end `ksbox exec`: the real binary against the fake VMM + agent.
// Exit statuses, output separation and exactness, stdin, the ExecRequest
// fields, agent errors and connection failures.
#include <fcntl.h>
#include <poll.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "cli_process.h"
#include "cli_test_util.h"
#include "fake_vmm.h"

namespace ksbox::cli::testing {
namespace {

using namespace std::chrono_literals;
namespace proto = ksbox::protocol;
using Clock = std::chrono::steady_clock;

std::vector<std::string> exec_args(const FakeVmm& vmm, std::vector<std::string> rest) {
  std::vector<std::string> a = {"exec", "--socket", vmm.socket_path(), "--connect-timeout", "5"};
  a.insert(a.end(), rest.begin(), rest.end());
  return a;
}

struct StatusCase {
  proto::Exited exited;
  int want;
};

class ExecExitStatus : public ::testing::TestWithParam<StatusCase> {};

TEST_P(ExecExitStatus, IsTheCommandsShellStatus) {
  const StatusCase c = GetParam();
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    a.send(c.exited);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "true"}));
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.status(), c.want) << r.err;
  EXPECT_EQ(r.err, "");
}

INSTANTIATE_TEST_SUITE_P(Statuses, ExecExitStatus,
                         ::testing::Values(StatusCase{{proto::Exited::kExitedNormally, 0}, 0},
                                           StatusCase{{proto::Exited::kExitedNormally, 1}, 1},
                                           StatusCase{{proto::Exited::kExitedNormally, 42}, 42},
                                           StatusCase{{proto::Exited::kExitedNormally, 255}, 255},
                                           StatusCase{{proto::Exited::kKilledBySignal, 9}, 137}));

TEST(ExecCli, StdoutAndStderrAreSeparateAndBinaryExact) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  const std::string rev(all.rbegin(), all.rend());
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    a.send_stdout(bytes_of(all.substr(0, 100)));
    a.send_stderr(bytes_of(rev.substr(0, 7)));
    a.send_stdout(bytes_of(all.substr(100)));
    a.send_stderr(bytes_of(rev.substr(7)));
    a.exit_with(0);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "cat"}));
  EXPECT_EQ(r.status(), 0);
  EXPECT_EQ(r.out, all);
  EXPECT_EQ(r.err, rev);
}

TEST(ExecCli, SeveralMegabytesArriveExactly) {
  const std::string out = random_bytes(8 << 20, 1), err = random_bytes(1 << 20, 2);
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    // Odd frame sizes, interleaved, up to the 1 MiB maximum.
    size_t o = 0, e = 0, step = 1;
    while (o < out.size() || e < err.size()) {
      const size_t n = std::min(out.size() - o, (step * 7919) % proto::kMaxPayload + 1);
      a.send_stdout(bytes_of(out.substr(o, n)));
      o += n;
      const size_t m = std::min(err.size() - e, (step * 104729) % 70000 + 1);
      a.send_stderr(bytes_of(err.substr(e, m)));
      e += m;
      ++step;
    }
    a.exit_with(0);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "x"}));
  EXPECT_EQ(r.status(), 0);
  EXPECT_EQ(r.out.size(), out.size());
  EXPECT_TRUE(r.out == out);
  EXPECT_TRUE(r.err == err);
}

TEST(ExecCli, NonBlockingStdoutGetsEverything) {
  // An inherited O_NONBLOCK stdout: writes hit EAGAIN while the reader is slow.
  const std::string out = random_bytes(4 << 20, 4);
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    a.send_stdout(bytes_of(out));
    a.exit_with(0);
  });
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  CliProcess p({.args = exec_args(vmm, {"--", "x"}), .stdout_fd = w.get()});
  w.reset();
  std::string got;
  for (;;) {
    pollfd pfd{r.get(), POLLIN, 0};
    ASSERT_GT(::poll(&pfd, 1, 5000), 0);
    char buf[4096];  // small, slow reads
    const ssize_t n = ::read(r.get(), buf, sizeof(buf));
    if (n == 0) break;
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  const CliRun run = p.wait();
  EXPECT_EQ(run.status(), 0) << run.err;
  EXPECT_EQ(got.size(), out.size());
  EXPECT_TRUE(got == out);
}

TEST(ExecCli, StdinIsForwardedExactlyAndEndsWithEof) {
  const std::string in = random_bytes(3 << 20, 3);
  Bytes got;
  proto::ExecRequest req;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    got = a.read_stdin();
    a.send_stdout(bytes_of("done"));
    a.exit_with(0);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "cat"}), in);
  EXPECT_EQ(r.status(), 0) << r.err;
  EXPECT_EQ(r.out, "done");
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_FALSE(req.stdin_closed());
  EXPECT_EQ(got.size(), in.size());
  EXPECT_TRUE(std::string(got.begin(), got.end()) == in);
}

TEST(ExecCli, EmptyStdinSendsEofAtOnce) {
  Bytes got = {1};
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    got = a.read_stdin();
    a.exit_with(0);
  });
  EXPECT_EQ(run_cli(exec_args(vmm, {"--", "cat"})).status(), 0);
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_TRUE(got.empty());
}

TEST(ExecCli, DevNullStdinIsAnnouncedAsClosed) {
  proto::ExecRequest req;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    a.exit_with(0);
  });
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  CliProcess p({.args = exec_args(vmm, {"--", "cat"}), .stdin_fd = null.get()});
  EXPECT_EQ(p.wait().status(), 0);
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_TRUE(req.stdin_closed());
}

TEST(ExecCli, OptionsReachTheExecRequest) {
  proto::ExecRequest req;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    a.exit_with(0);
  });
  CliProcess p({.args = {"exec", "-s", vmm.socket_path(), "--port", "2048", "-e", "A=1", "--env", "HOSTVAR", "-e",
                         "UNSETVAR", "-e", "EMPTY=", "-w", "/work/dir", "-u", "1000:100", "--", "prog", "a b",
                         "-x", "--", "--port"},
                .env = std::vector<std::string>{"HOSTVAR=host value", "PATH=/usr/bin:/bin"}});
  const CliRun r = p.wait();
  EXPECT_EQ(r.status(), 0) << r.err;
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_EQ(vmm.last_connect_line(), "CONNECT 2048");
  EXPECT_EQ(req.argv, (std::vector<std::string>{"prog", "a b", "-x", "--", "--port"}));
  EXPECT_EQ(req.env, (std::vector<std::string>{"A=1", "HOSTVAR=host value", "EMPTY="}));
  EXPECT_EQ(req.cwd, "/work/dir");
  EXPECT_EQ(req.uid, 1000u);
  EXPECT_EQ(req.gid, 100u);
  EXPECT_FALSE(req.pty());
  EXPECT_EQ(req.rows, 0);
  EXPECT_EQ(req.cols, 0);
}

TEST(ExecCli, DefaultsLeaveUserAndDirToTheAgent) {
  proto::ExecRequest req;
  FakeVmm vmm([&](AgentConn& a) {
    req = a.accept_exec();
    a.exit_with(0);
  });
  EXPECT_EQ(run_cli(exec_args(vmm, {"-u", "7", "--", "id"})).status(), 0);
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_EQ(vmm.last_connect_line(), "CONNECT 1024");
  EXPECT_EQ(req.uid, 7u);
  EXPECT_EQ(req.gid, proto::kDefaultId);
  EXPECT_EQ(req.cwd, "");
  EXPECT_TRUE(req.env.empty());
}

TEST(ExecCli, AgentErrorEnoentIs127AndOthersAre126) {
  for (const auto& [code, want] : {std::pair{uint32_t{ENOENT}, 127}, std::pair{uint32_t{EACCES}, 126},
                                   std::pair{proto::kErrBadRequest, 126}}) {
    FakeVmm vmm([&, code = code](AgentConn& a) {
      a.expect<proto::Hello>();
      a.send(proto::Hello{});
      a.expect<proto::ExecRequest>();
      a.send(proto::ErrorMsg{code, "nosuchcmd: cannot run"});
    });
    const CliRun r = run_cli(exec_args(vmm, {"--", "nosuchcmd"}));
    EXPECT_EQ(r.status(), want) << code;
    EXPECT_EQ(r.err, "ksbox: nosuchcmd: cannot run\n");
    EXPECT_EQ(r.out, "");
  }
}

TEST(ExecCli, RefusedUntilTheConnectTimeoutIs255WithAMessage) {
  FakeVmm vmm([](AgentConn&) {}, /*refuse_first=*/-1);
  const auto start = Clock::now();
  const CliRun r = run_cli({"exec", "-s", vmm.socket_path(), "--connect-timeout", "0.3", "--", "true"});
  const auto took = Clock::now() - start;
  EXPECT_EQ(r.status(), 255);
  EXPECT_TRUE(contains(r.err, "ksbox: cannot reach guest port 1024")) << r.err;
  EXPECT_TRUE(contains(r.err, "guest agent not ready")) << r.err;
  EXPECT_TRUE(contains(r.err, "gave up after 0.3 s")) << r.err;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2000ms);
  EXPECT_GE(vmm.refused(), 3);
}

TEST(ExecCli, MissingSocketUntilTheConnectTimeoutIs255) {
  const CliRun r = run_cli({"exec", "-s", "/nonexistent/vm.sock", "--connect-timeout", "0.1", "--", "true"});
  EXPECT_EQ(r.status(), 255);
  EXPECT_TRUE(contains(r.err, "No such file or directory")) << r.err;
}

TEST(ExecCli, RefusedHandshakesAreRetried) {
  FakeVmm vmm(
      [](AgentConn& a) {
        a.accept_exec();
        a.exit_with(5);
      },
      /*refuse_first=*/4);
  EXPECT_EQ(run_cli(exec_args(vmm, {"--", "x"})).status(), 5);
  EXPECT_EQ(vmm.refused(), 4);
}

TEST(ExecCli, ConnectionDroppedMidRunIs255AfterTheOutputSoFar) {
  FakeVmm vmm([](AgentConn& a) {
    a.accept_exec();
    a.send_stdout(bytes_of("partial output"));
  });  // the handler returns: the connection closes without Exited
  const CliRun r = run_cli(exec_args(vmm, {"--", "x"}));
  EXPECT_EQ(r.status(), 255);
  EXPECT_EQ(r.out, "partial output");
  EXPECT_TRUE(contains(r.err, "ksbox: the connection to the agent was lost before the command exited")) << r.err;
}

TEST(ExecCli, ConnectionDroppedMidFrameIs255) {
  FakeVmm vmm([](AgentConn& a) {
    a.accept_exec();
    Bytes frame;
    proto::encode_data<proto::MsgType::kStdoutData>(frame, bytes_of("0123456789"));
    frame.resize(frame.size() - 3);
    a.send_raw(frame);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "x"}));
  EXPECT_EQ(r.status(), 255);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "in the middle of a message")) << r.err;
}

TEST(ExecCli, GarbageFromTheAgentIsAProtocolError) {
  FakeVmm vmm([](AgentConn& a) {
    a.accept_exec();
    const std::string junk = "HTTP/1.1 200 OK\r\n\r\n";
    a.send_raw(bytes_of(junk));
    a.wait_closed(2000ms);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "x"}));
  EXPECT_EQ(r.status(), 255);
  EXPECT_TRUE(contains(r.err, "ksbox: protocol error from the agent: bad magic")) << r.err;
}

TEST(ExecCli, OutOfOrderMessagesAreAProtocolError) {
  FakeVmm vmm([](AgentConn& a) {
    a.expect<proto::Hello>();
    a.send(proto::Hello{});
    a.expect<proto::ExecRequest>();
    a.send_stdout(bytes_of("before Started"));
    a.wait_closed(2000ms);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "x"}));
  EXPECT_EQ(r.status(), 255);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "protocol error")) << r.err;
}

TEST(ExecCli, NoCommonProtocolVersionIs255) {
  FakeVmm vmm([](AgentConn& a) {
    a.expect<proto::Hello>();
    a.send(proto::Hello{7, 9});
    a.wait_closed(2000ms);
  });
  const CliRun r = run_cli(exec_args(vmm, {"--", "x"}));
  EXPECT_EQ(r.status(), 255);
  EXPECT_TRUE(contains(r.err, "no common protocol version")) << r.err;
}

TEST(ExecCli, UsageErrorsAre2) {
  const CliRun no_cmd = run_cli({"exec", "-s", "/x.sock"});
  EXPECT_EQ(no_cmd.status(), 2);
  EXPECT_TRUE(contains(no_cmd.err, "no command")) << no_cmd.err;
  const CliRun bad_user = run_cli({"exec", "-s", "/x.sock", "-u", "root", "--", "id"});
  EXPECT_EQ(bad_user.status(), 2);
  EXPECT_TRUE(contains(bad_user.err, "--user 'root'")) << bad_user.err;
  EXPECT_EQ(run_cli({"exec", "-s", "/x.sock", "-e", "=x", "--", "id"}).status(), 2);
  // Neither --socket nor a sandbox (XDG_STATE_HOME is empty): like any VM that cannot be reached.
  ::setenv("XDG_STATE_HOME", "/nonexistent-ksbox-state", 1);
  const CliRun no_vm = run_cli({"exec", "nosuch", "--", "id"});
  ::unsetenv("XDG_STATE_HOME");
  EXPECT_EQ(no_vm.status(), 255);
  EXPECT_TRUE(contains(no_vm.err, "no sandbox named nosuch")) << no_vm.err;
  EXPECT_EQ(run_cli({"exec", "-s", "/x.sock", "--connect-timeout", "-1", "--", "id"}).status(), 2);
  EXPECT_EQ(run_cli({"frobnicate"}).status(), 2);
  EXPECT_EQ(run_cli({}).status(), 2);
  const CliRun dashes = run_cli({"exec", "-s", "/x.sock", "ls", "-l"});
  EXPECT_EQ(dashes.status(), 2);
  EXPECT_TRUE(contains(dashes.err, "after `--`")) << dashes.err;
}

TEST(ExecCli, HelpAndVersion) {
  const CliRun help = run_cli({"--help"});
  EXPECT_EQ(help.status(), 0);
  for (const char* cmd : {"exec", "attach", "stop"}) EXPECT_TRUE(contains(help.out, cmd)) << help.out;
  const CliRun exec_help = run_cli({"exec", "--help"});
  EXPECT_EQ(exec_help.status(), 0);
  for (const char* s : {"--socket", "--tty", "--env", "--workdir", "--user", "--connect-timeout", "--port",
                        "Exit status", "127", "126", "255", "128+N", "SIGINT"})
    EXPECT_TRUE(contains(exec_help.out, s)) << s;
  const CliRun stop_help = run_cli({"stop", "--help"});
  EXPECT_TRUE(contains(stop_help.out, "--timeout")) << stop_help.out;
  EXPECT_TRUE(contains(stop_help.out, "Exit status")) << stop_help.out;
  const CliRun attach_help = run_cli({"attach", "--help"});
  EXPECT_TRUE(contains(attach_help.out, "--detach-key")) << attach_help.out;
  const CliRun version = run_cli({"--version"});
  EXPECT_EQ(version.status(), 0);
  EXPECT_TRUE(version.out.starts_with("ksbox ")) << version.out;
}

}  // namespace
}  // namespace ksbox::cli::testing
