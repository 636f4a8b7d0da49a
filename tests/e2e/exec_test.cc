// End to end: `ksbox exec` / `attach` / `stop` against ksbox-vmm's vsock and
// ksbox-agent in the real guest (inside the nested harness when the host has
// no /dev/kvm; see tests/nested/with-kvm).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "protocol/exec_protocol.h"
#include "tests/e2e/guest.h"
#include "tests/e2e/sandbox.h"
#include "tests/e2e/tmux.h"

namespace ksbox::test {
namespace {

class ExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0)
        << "no usable /dev/kvm: run this test through tests/nested/with-kvm (ctest does)";
    for (const char* f : {"vmlinux", "initramfs.cpio.gz"})
      ASSERT_EQ(::access(guest_file(f).c_str(), R_OK), 0)
          << guest_file(f) << " is missing: cmake --build build --target guest-image";
    sb_ = std::make_unique<Sandbox>();
    // The first exec waits for the guest to boot (the CLI retries the connection).
    auto r = sb_->exec({"true"});
    ASSERT_EQ(r.exit_code, 0) << "the guest never served an exec\n" << sb_->describe(r);
  }
  void TearDown() override {
    if (!sb_) return;
    if (sb_->vmm().running()) {
      const auto st = sb_->stop();
      EXPECT_EQ(st, 0) << "ksbox stop did not end the VM cleanly\n" << sb_->describe({});
    }
  }
  Sandbox& sb() { return *sb_; }
  std::unique_ptr<Sandbox> sb_;
};

std::string first_word(const std::string& s) { return s.substr(0, s.find_first_of(" \n")); }

TEST_F(ExecTest, ExitCodesPassThrough) {
  EXPECT_EQ(sb().exec({"true"}).exit_code, 0);
  EXPECT_EQ(sb().exec({"false"}).exit_code, 1);
  auto r = sb().exec({"sh", "-c", "exit 42"});
  EXPECT_EQ(r.exit_code, 42) << sb().describe(r);
}

TEST_F(ExecTest, DeathBySignalIs128PlusTheSignal) {
  auto r = sb().exec({"sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.exit_code, 128 + 9) << sb().describe(r);

  // Ctrl-C on the host CLI reaches the guest process.
  ProcessOptions popts;
  popts.signal = SIGINT;
  popts.send_signal_when = [](const std::string& out) { return out.find("started") != std::string::npos; };
  popts.timeout = std::chrono::seconds(60);
  r = sb().exec({"sh", "-c", "echo started; exec sleep 100"}, {}, popts);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGINT) << sb().describe(r);
}

TEST_F(ExecTest, StdoutAndStderrStaySeparateAndBinarySafe) {
  auto r = sb().exec({"sh", "-c", "printf 'out\\000\\001\\377'; echo err >&2; printf more"});
  ASSERT_EQ(r.exit_code, 0) << sb().describe(r);
  EXPECT_EQ(r.out, std::string("out\0\1\377more", 10));
  EXPECT_EQ(r.err, "err\n");
}

TEST_F(ExecTest, HundredMegabytesOfStdoutArriveIntact) {
  auto g = sb().exec({"sh", "-c", "head -c 100000000 /dev/urandom > /tmp/big && sha256sum /tmp/big"});
  ASSERT_EQ(g.exit_code, 0) << sb().describe(g);
  ProcessOptions popts;
  popts.timeout = std::chrono::seconds(240);
  auto h = sb().host_sh("set -o pipefail; $KSBOX -- cat /tmp/big | tee >(wc -c >&2) | sha256sum", popts);
  ASSERT_EQ(h.exit_code, 0) << sb().describe(h);
  EXPECT_EQ(first_word(h.out), first_word(g.out));
  EXPECT_EQ(std::stoull(h.err), 100000000u);
}

TEST_F(ExecTest, StdinIsPipedInUntilEof) {
  auto h = sb().host_sh(
      "head -c 5000000 /dev/urandom > in.bin && sha256sum < in.bin && $KSBOX -- sha256sum < in.bin && "
      "$KSBOX -- cat < in.bin | cmp - in.bin && echo same");
  ASSERT_EQ(h.exit_code, 0) << sb().describe(h);
  std::istringstream lines(h.out);
  std::string host_sum, guest_sum, same;
  std::getline(lines, host_sum);
  std::getline(lines, guest_sum);
  std::getline(lines, same);
  EXPECT_EQ(first_word(guest_sum), first_word(host_sum));
  EXPECT_EQ(same, "same");
}

TEST_F(ExecTest, EnvWorkdirAndUserReachTheCommand) {
  auto r = sb().exec({"sh", "-c", "echo \"$FOO|$(pwd)|$(id -u):$(id -g)|$#|$1\"", "sh", "", "two words"},
                     {"-e", "FOO=a b=c", "-w", "/tmp", "-u", "1000:1001"});
  ASSERT_EQ(r.exit_code, 0) << sb().describe(r);
  EXPECT_EQ(r.out, "a b=c|/tmp|1000:1001|2|\n");
}

TEST_F(ExecTest, MissingCommandExits127) {
  auto r = sb().exec({"/no/such/program"});
  EXPECT_EQ(r.exit_code, 127) << sb().describe(r);
  EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;
}

TEST_F(ExecTest, FiftyConcurrentExecs) {
  constexpr int kExecs = 50;
  std::vector<ProcessResult> results(kExecs);
  std::vector<std::thread> threads;
  for (int i = 0; i < kExecs; ++i)
    threads.emplace_back([&, i] {
      results[i] = sb().exec({"sh", "-c", "sleep 1; echo out-$0; echo err-$0 >&2; exit $(($0 % 7))",
                              std::to_string(i)});
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kExecs; ++i) {
    SCOPED_TRACE("exec " + std::to_string(i));
    EXPECT_EQ(results[i].exit_code, i % 7) << sb().describe(results[i]);
    EXPECT_EQ(results[i].out, "out-" + std::to_string(i) + "\n");
    EXPECT_EQ(results[i].err, "err-" + std::to_string(i) + "\n");
  }
}

TEST_F(ExecTest, OrphansAreReaped) {
  auto r = sb().exec({"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.2 &); done"});
  ASSERT_EQ(r.exit_code, 0) << sb().describe(r);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  r = sb().exec({"sh", "-c", "grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l"});
  ASSERT_EQ(r.exit_code, 0) << sb().describe(r);
  EXPECT_EQ(r.out, "0\n") << "zombies left in the guest";
}

// Opens the guest's vsock port through the VMM's Unix socket by hand.
int raw_connect(const std::string& socket_path, const std::string& connect_line, std::string* reply) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::write(fd, connect_line.data(), connect_line.size()) != static_cast<ssize_t>(connect_line.size())) {
    ::close(fd);
    return -1;
  }
  char c = 0;
  while (::read(fd, &c, 1) == 1) {
    reply->push_back(c);
    if (c == '\n') break;
  }
  return fd;
}

TEST_F(ExecTest, AgentAndVmmSurviveMalformedInput) {
  using namespace ksbox::protocol;
  // Handshake-level garbage, refused by the VMM.
  for (const std::string line : {"CONNECT abc\n", "CONNECT 99999\n", "HELLO\n", "CONNECT 1024 1024\n"}) {
    std::string reply;
    const int fd = raw_connect(sb().socket(), line, &reply);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(reply.rfind("OK", 0), std::string::npos) << "accepted: " << line;
    ::close(fd);
  }
  // Protocol-level garbage, refused by the agent.
  std::vector<uint8_t> hello, exec, oversized;
  ASSERT_EQ(encode(hello, Hello{}), ProtoError::kOk);
  ExecRequest req;
  req.argv = {"true"};
  ASSERT_EQ(encode(exec, req), ProtoError::kOk);
  oversized = hello;
  oversized[8] = 0xff, oversized[9] = 0xff, oversized[10] = 0xff, oversized[11] = 0x7f;
  std::vector<std::vector<uint8_t>> attacks = {
      {'G', 'E', 'T', ' ', '/', '\n'},                                  // not a frame at all
      oversized,                                                        // 2 GiB payload announced
      exec,                                                             // ExecRequest before Hello
      std::vector<uint8_t>(hello.begin(), hello.begin() + 7),           // half a header, then close
      {},                                                               // connects, says nothing
  };
  std::vector<uint8_t> hello_then_garbage = hello;
  hello_then_garbage.insert(hello_then_garbage.end(), 64, 0xee);
  attacks.push_back(hello_then_garbage);
  std::vector<int> idle;
  for (const auto& bytes : attacks) {
    std::string reply;
    const int fd = raw_connect(sb().socket(), "CONNECT 1024\n", &reply);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(reply.rfind("OK ", 0), 0u) << reply;
    if (bytes.empty()) {
      idle.push_back(fd);  // keep it open: a silent peer must not block others
      continue;
    }
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  auto r = sb().exec({"echo", "still-serving"});
  EXPECT_EQ(r.exit_code, 0) << sb().describe(r);
  EXPECT_EQ(r.out, "still-serving\n");
  for (int fd : idle) ::close(fd);
  EXPECT_TRUE(sb().vmm().running());
}

TEST_F(ExecTest, StopPowersTheGuestOffAndRemovesTheSocket) {
  const auto st = sb().stop();
  ASSERT_TRUE(st.has_value()) << "the VMM did not exit after ksbox stop\n" << sb().describe({});
  EXPECT_EQ(*st, 0) << sb().describe({});
  EXPECT_FALSE(std::filesystem::exists(sb().socket()));
}

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

TEST_F(ExecTest, AttachGivesAPtyShellWithResizeThroughTmux) {
  ASSERT_EQ(::access("/usr/bin/tmux", X_OK), 0) << "tmux is missing: run scripts/setup.sh";
  Tmux tmux(sb().dir());
  const std::string status_file = sb().dir() + "/attach-status";
  const std::string cmd = cli_path() + " attach --socket " + sb().socket() + "; echo $? > " + status_file +
                          "; sleep 60";
  auto r = tmux.run({"new-session", "-d", "-s", "s", "-x", "120", "-y", "40", cmd});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  tmux.type("stty size; tty; echo $((6*7))x");
  tmux.enter();
  EXPECT_TRUE(tmux.wait_for_screen(std::regex("\n40 120\\s*\n/dev/pts/[0-9]+\\s*\n42x")))
      << "screen:\n" << tmux.screen();
  tmux.run({"resize-window", "-t", "s", "-x", "100", "-y", "30"});
  tmux.type("stty size");
  tmux.enter();
  EXPECT_TRUE(tmux.wait_for_screen(std::regex("\n30 100\\s*\n"))) << "screen:\n" << tmux.screen();
  tmux.type("exit 7");
  tmux.enter();
  for (int i = 0; i < 300 && read_first_line(status_file).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(read_first_line(status_file), "7") << "screen:\n" << tmux.screen();
}

TEST_F(ExecTest, AttachDetachesOnCtrlRightBracket) {
  ASSERT_EQ(::access("/usr/bin/tmux", X_OK), 0) << "tmux is missing: run scripts/setup.sh";
  Tmux tmux(sb().dir());
  const std::string status_file = sb().dir() + "/attach-status";
  const std::string cmd = "stty -a > " + sb().dir() + "/stty-before; " + cli_path() + " attach --socket " +
                          sb().socket() + "; echo $? > " + status_file + "; stty -a > " + sb().dir() +
                          "/stty-after; sleep 60";
  ASSERT_EQ(tmux.run({"new-session", "-d", "-s", "s", "-x", "100", "-y", "30", cmd}).exit_code, 0);
  tmux.type("echo ready-$((1+1))");
  tmux.enter();
  ASSERT_TRUE(tmux.wait_for_screen(std::regex("ready-2"))) << tmux.screen();
  tmux.run({"send-keys", "-t", "s", "C-]"});
  for (int i = 0; i < 300 && read_first_line(status_file).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(read_first_line(status_file), "0") << tmux.screen();
  EXPECT_NE(tmux.screen().find("detached"), std::string::npos) << tmux.screen();
  // The terminal is back in the mode it had before attach.
  std::ifstream before(sb().dir() + "/stty-before"), after(sb().dir() + "/stty-after");
  std::stringstream b, a;
  b << before.rdbuf();
  a << after.rdbuf();
  EXPECT_EQ(a.str(), b.str());
  // The VMM and agent carry on serving.
  EXPECT_EQ(sb().exec({"true"}).exit_code, 0);
}

}  // namespace
}  // namespace ksbox::test
