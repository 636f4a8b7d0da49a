// run_exec_session() in-process, over a socketpair and pipes: the library
// API that `ksbox exec` is built on, without the binary.
#include "cli/exec_session.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>

#include "fake_vmm.h"

namespace ksbox::cli {
namespace {

using namespace std::chrono_literals;
namespace proto = ksbox::protocol;
using testing::AgentConn;
using testing::Bytes;
using testing::bytes_of;

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    r = UniqueFd(fds[0]);
    w = UniqueFd(fds[1]);
  }
  std::string drain() {
    w.reset();
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(r.get(), buf, sizeof(buf))) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
  }
};

// Runs `agent` on one end of a socketpair in a thread and the session on the other.
template <typename Agent>
SessionResult run_with(Agent agent, const proto::ExecRequest& req, const SessionIo& io,
                       const SessionOptions& opts = {}) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
  UniqueFd ours(sv[0]);
  std::thread t([&agent, fd = UniqueFd(sv[1])]() mutable {
    AgentConn a(std::move(fd));
    try {
      agent(a);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "agent: " << e.what();
    }
  });
  SessionResult r = run_exec_session(ours.get(), req, io, opts);
  ours.reset();
  t.join();
  return r;
}

proto::ExecRequest request(std::vector<std::string> argv) {
  proto::ExecRequest r;
  r.argv = std::move(argv);
  return r;
}

TEST(ExecSession, RoutesOutputAndReturnsTheStatus) {
  Pipe in, out, err;
  in.w.reset();  // empty stdin
  proto::ExecRequest got;
  const auto r = run_with(
      [&](AgentConn& a) {
        got = a.accept_exec(9);
        EXPECT_TRUE(a.read_stdin().empty());
        a.send_stdout(bytes_of("out"));
        a.send_stderr(bytes_of("err"));
        a.killed_by(15);
      },
      request({"prog", "arg"}), {.in = in.r.get(), .out = out.w.get(), .err = err.w.get()});
  EXPECT_EQ(r.kind, SessionResult::Kind::kExited);
  EXPECT_EQ(r.exit_status, 143);
  EXPECT_EQ(out.drain(), "out");
  EXPECT_EQ(err.drain(), "err");
  EXPECT_EQ(got.argv, (std::vector<std::string>{"prog", "arg"}));
}

TEST(ExecSession, NoStdinFdSendsEofUnlessTheRequestSaysClosed) {
  Pipe out;
  for (const bool flagged : {false, true}) {
    auto req = request({"x"});
    if (flagged) req.flags |= proto::kExecFlagStdinClosed;
    const auto r = run_with(
        [&](AgentConn& a) {
          a.accept_exec();
          if (!flagged) {
            EXPECT_TRUE(a.read_stdin().empty());
          }
          a.exit_with(0);
          if (flagged) {
            // Nothing else may arrive: the CLI closes after Exited.
            EXPECT_EQ(a.read_frame(2000ms), std::nullopt);
          }
        },
        req, {.in = -1, .out = out.w.get(), .err = out.w.get()});
    EXPECT_EQ(r.exit_status, 0) << flagged;
  }
}

TEST(ExecSession, DetachKeyEndsTheSessionAfterForwardingWhatCameBefore) {
  Pipe in, out;
  const std::string typed = "echo hi\r\x1dnot sent";
  ASSERT_EQ(::write(in.w.get(), typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  Bytes got;
  bool closed = false;
  const auto r = run_with(
      [&](AgentConn& a) {
        a.accept_exec();
        while (auto f = a.read_frame()) {
          if (f->type == proto::MsgType::kStdinData) got.insert(got.end(), f->payload.begin(), f->payload.end());
        }
        closed = true;
      },
      request({"sh"}), {.in = in.r.get(), .out = out.w.get(), .err = out.w.get()}, {.detach_key = 0x1d});
  EXPECT_EQ(r.kind, SessionResult::Kind::kDetached);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(std::string(got.begin(), got.end()), "echo hi\r");
  EXPECT_TRUE(closed);
}

TEST(ExecSession, AgentErrorMapsToShellStatuses) {
  Pipe out;
  for (const auto& [code, want] : {std::pair{uint32_t{ENOENT}, 127}, std::pair{uint32_t{EPERM}, 126}}) {
    const auto r = run_with(
        [code = code](AgentConn& a) {
          a.expect<proto::Hello>();
          a.send(proto::Hello{});
          a.expect<proto::ExecRequest>();
          a.send(proto::ErrorMsg{code, ""});
        },
        request({"x"}), {.in = -1, .out = out.w.get(), .err = out.w.get()});
    EXPECT_EQ(r.kind, SessionResult::Kind::kAgentError);
    EXPECT_EQ(r.exit_status, want);
    EXPECT_FALSE(r.message.empty());  // a message even when the agent gave none
  }
}

TEST(ExecSession, ExitedIsHonouredEvenAfterSendingToTheAgentFailed) {
  // The agent sends output, Exited, and closes without reading our stdin.
  // While our stdout is blocked we do not read the connection, so we first
  // see our sends fail (EPIPE); the Exited waiting in our receive buffer
  // must still decide the result.
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);  // a stdin that keeps coming
  UniqueFd stdin_r(fds[0]), stdin_w(fds[1]);
  std::thread feeder([&] {
    const std::string chunk(65536, 'i');
    for (int i = 0; i < 64; ++i)
      if (::send(stdin_w.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
  });
  Pipe out;
  std::atomic<bool> agent_done{false};
  size_t drained = 0;
  std::thread drainer([&] {
    while (!agent_done) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);  // the session meets EPIPE meanwhile
    char buf[65536];
    ssize_t n;
    while ((n = ::read(out.r.get(), buf, sizeof(buf))) > 0) drained += static_cast<size_t>(n);
  });
  const auto r = run_with(
      [&](AgentConn& a) {
        struct Done {
          std::atomic<bool>& flag;
          ~Done() { flag = true; }
        } done{agent_done};
        a.accept_exec();
        // 1 MiB: as much as the session buffers before it stops reading.
        a.send_stdout(Bytes(proto::kMaxPayload, 'o'));
        a.exit_with(4);
      },
      request({"x"}), {.in = stdin_r.get(), .out = out.w.get(), .err = out.w.get()});
  out.w.reset();
  drainer.join();
  ::shutdown(stdin_r.get(), SHUT_RDWR);
  feeder.join();
  EXPECT_EQ(r.kind, SessionResult::Kind::kExited) << r.message;
  EXPECT_EQ(r.exit_status, 4) << r.message;
  EXPECT_EQ(drained, proto::kMaxPayload);
}

}  // namespace
}  // namespace ksbox::cli
