// End-to-end `ksbox exec`: signals forwarded to the remote command, the
// double-SIGINT escape, EPIPE on our stdout, and bounded memory while our
// stdout is blocked.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "cli_process.h"
#include "cli_test_util.h"
#include "fake_vmm.h"

namespace ksbox::cli::testing {
namespace {

using namespace std::chrono_literals;
namespace proto = ksbox::protocol;
using Clock = std::chrono::steady_clock;

std::vector<std::string> exec_args(const FakeVmm& vmm) {
  return {"exec", "--socket", vmm.socket_path(), "--connect-timeout", "5", "--", "sleep", "100"};
}

// Reads frames until a Signal arrives (skipping stdin traffic).
std::optional<int> next_signal(AgentConn& a, milliseconds timeout = kIoTimeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto f = a.read_frame(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()) + 1ms);
    if (!f) return std::nullopt;
    proto::Signal s;
    if (proto::decode(*f, s) == proto::ProtoError::kOk) return s.signo;
  }
  return std::nullopt;
}

// The agent's side of a session that gets two signals: accepts the exec and
// records the first two Signals, telling the test when each step happened.
struct TwoSignals {
  void receive(AgentConn& a) {
    a.accept_exec();
    started.set_value();
    signals.push_back(next_signal(a).value_or(-1));
    first.set_value();
    signals.push_back(next_signal(a).value_or(-1));
  }
  std::promise<void> started, first;
  std::vector<int> signals;
};

class ExecSignal : public ::testing::TestWithParam<int> {};

TEST_P(ExecSignal, IsForwardedAndTheCliSurvivesUntilExited) {
  const int signo = GetParam();
  std::promise<void> started;
  std::atomic<int> got{0};
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    started.set_value();
    got = next_signal(a).value_or(-1);
    std::this_thread::sleep_for(50ms);  // the CLI must still be there to hear back
    a.killed_by(got > 0 ? got.load() : SIGKILL);
  });
  CliProcess p({.args = exec_args(vmm)});
  ASSERT_EQ(started.get_future().wait_for(5s), std::future_status::ready);
  ASSERT_EQ(::kill(p.pid(), signo), 0);
  const CliRun r = p.wait();
  EXPECT_EQ(got.load(), signo);
  EXPECT_EQ(r.term_signal, 0) << "ksbox died of the signal itself";
  EXPECT_EQ(r.status(), 128 + signo) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Forwarded, ExecSignal, ::testing::Values(SIGINT, SIGTERM, SIGHUP, SIGQUIT));

TEST(ExecSignals, SecondSigintWithinASecondAbandonsTheSession) {
  TwoSignals two;
  bool closed = false;
  FakeVmm vmm([&](AgentConn& a) {
    two.receive(a);
    closed = a.wait_closed(3000ms);  // the command ignores SIGINT; the CLI leaves anyway
  });
  CliProcess p({.args = exec_args(vmm)});
  ASSERT_EQ(two.started.get_future().wait_for(5s), std::future_status::ready);
  ASSERT_EQ(::kill(p.pid(), SIGINT), 0);
  // Two signals sent at once could merge into one pending signal: wait until
  // the first was forwarded.
  ASSERT_EQ(two.first.get_future().wait_for(5s), std::future_status::ready);
  ASSERT_EQ(::kill(p.pid(), SIGINT), 0);
  const CliRun r = p.wait(3000ms);
  EXPECT_EQ(r.status(), 130);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_TRUE(contains(r.err, "interrupted twice")) << r.err;
  ASSERT_TRUE(vmm.wait_handlers());
  EXPECT_EQ(two.signals, (std::vector<int>{SIGINT, SIGINT}));
  EXPECT_TRUE(closed);
}

TEST(ExecSignals, SigintsFurtherApartAreEachJustForwarded) {
  TwoSignals two;
  FakeVmm vmm([&](AgentConn& a) {
    two.receive(a);
    a.exit_with(3);
  });
  CliProcess p({.args = exec_args(vmm)});
  ASSERT_EQ(two.started.get_future().wait_for(5s), std::future_status::ready);
  ASSERT_EQ(::kill(p.pid(), SIGINT), 0);
  ASSERT_EQ(two.first.get_future().wait_for(5s), std::future_status::ready);
  std::this_thread::sleep_for(1100ms);
  ASSERT_EQ(::kill(p.pid(), SIGINT), 0);
  const CliRun r = p.wait();
  EXPECT_EQ(r.status(), 3) << r.err;
  EXPECT_EQ(two.signals, (std::vector<int>{SIGINT, SIGINT}));
}

TEST(ExecSignals, SigintWhileConnectingEndsWith130) {
  FakeVmm vmm([](AgentConn&) {}, /*refuse_first=*/-1);
  CliProcess p({.args = {"exec", "-s", vmm.socket_path(), "--connect-timeout", "10", "--", "x"}});
  const auto deadline = Clock::now() + 3s;
  while (vmm.refused() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(::kill(p.pid(), SIGINT), 0);
  const CliRun r = p.wait(3000ms);
  EXPECT_EQ(r.status(), 130);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_TRUE(contains(r.err, "while connecting")) << r.err;
}

TEST(ExecSignals, EpipeOnStdoutForwardsSigpipe) {
  std::atomic<int> got{0};
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    // `yes`: output until a signal arrives.
    const Bytes line(65536, 'y');
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline && got == 0) {
      a.send_stdout(line);
      while (auto f = a.try_read_frame()) {
        proto::Signal s;
        if (proto::decode(*f, s) == proto::ProtoError::kOk) got = s.signo;
      }
    }
    a.killed_by(got > 0 ? got.load() : SIGKILL);
  });
  CliProcess p({.args = exec_args(vmm)});
  // `| head -c 10`: read a little, then go away.
  ASSERT_EQ(read_until(p.stdout_pipe(), "yyyyyyyyyy").substr(0, 10), "yyyyyyyyyy");
  p.close_stdout_pipe();
  const CliRun r = p.wait();
  EXPECT_EQ(got.load(), SIGPIPE);
  EXPECT_EQ(r.term_signal, 0) << "ksbox died of SIGPIPE itself";
  EXPECT_EQ(r.status(), 141) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(ExecSignals, BlockedStdoutStopsReadingTheConnection) {
  constexpr size_t kFrames = 48;  // of 1 MiB
  std::promise<size_t> stalled_at;
  FakeVmm vmm([&](AgentConn& a) {
    a.accept_exec();
    const Bytes chunk(proto::kMaxPayload, 'z');
    Bytes frames;
    proto::encode_data<proto::MsgType::kStdoutData>(frames, chunk);
    size_t sent = 0, frame_off = 0;
    bool reported = false;
    auto last_progress = Clock::now();
    const size_t total = kFrames * frames.size();
    while (sent < total) {
      const ssize_t n = ::send(a.fd(), frames.data() + frame_off, frames.size() - frame_off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        frame_off += static_cast<size_t>(n);
        sent += static_cast<size_t>(n);
        if (frame_off == frames.size()) frame_off = 0;
        last_progress = Clock::now();
        continue;
      }
      if (n < 0 && errno != EAGAIN) throw FakeFailure("send failed");
      if (!reported && Clock::now() - last_progress > 300ms) {
        reported = true;
        stalled_at.set_value(sent);
      }
      std::this_thread::sleep_for(1ms);
    }
    if (!reported) stalled_at.set_value(sent);
    a.exit_with(0);
  });
  CliProcess p({.args = exec_args(vmm)});
  auto f = stalled_at.get_future();
  ASSERT_EQ(f.wait_for(8s), std::future_status::ready);
  const size_t at = f.get();
  const long rss = rss_kib(p.pid());
  // Nobody reads our stdout: the CLI holds ~1 MiB of output, the kernel a
  // pipe and socket buffers; the rest must wait in the agent.
  EXPECT_LT(at, size_t{8} << 20);
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, 32 * 1024) << "KiB resident while stdout is blocked";
  const CliRun r = p.wait(20'000ms);
  EXPECT_EQ(r.status(), 0) << r.err;
  EXPECT_EQ(r.out.size(), kFrames * proto::kMaxPayload);
  EXPECT_EQ(r.out.find_first_not_of('z'), std::string::npos);
}

}  // namespace
}  // namespace ksbox::cli::testing
