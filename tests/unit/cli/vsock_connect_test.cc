#include "cli/vsock_connect.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "fake_vmm.h"

namespace ksbox::cli {
namespace {

using namespace std::chrono_literals;
using testing::FakeVmm;
using Clock = std::chrono::steady_clock;

// Reads what is available on fd within the timeout.
std::string read_some(int fd, std::chrono::milliseconds timeout = 2000ms) {
  std::string got;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) {
      if (!got.empty()) break;
      continue;
    }
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST(VsockConnect, BytesAfterTheOkLineAreLeftForTheCaller) {
  FakeVmm vmm([](testing::AgentConn& a) { a.wait_closed(2000ms); });
  const std::string after = "first guest bytes\n\x01\x02";
  vmm.set_bytes_after_ok({after.begin(), after.end()});
  UniqueFd fd = vsock_connect({vmm.socket_path(), 1024}, {.timeout = 2000ms});
  EXPECT_EQ(read_some(fd.get()), after);
  EXPECT_EQ(vmm.last_connect_line(), "CONNECT 1024");
}

TEST(VsockConnect, RetriesRefusedHandshakesThenConnects) {
  FakeVmm vmm([](testing::AgentConn& a) { a.wait_closed(2000ms); }, /*refuse_first=*/3);
  UniqueFd fd = vsock_connect({vmm.socket_path(), 5000}, {.timeout = 3000ms});
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(vmm.refused(), 3);
  EXPECT_EQ(vmm.accepted(), 1);
  EXPECT_EQ(vmm.last_connect_line(), "CONNECT 5000");
}

TEST(VsockConnect, GivesUpAtTheTimeoutWithTheReason) {
  FakeVmm vmm([](testing::AgentConn&) {}, /*refuse_first=*/-1);
  const auto start = Clock::now();
  try {
    vsock_connect({vmm.socket_path(), 1024}, {.timeout = 250ms});
    FAIL() << "connected";
  } catch (const ConnectError& e) {
    EXPECT_EQ(e.reason(), ConnectError::Reason::kTimeout);
    EXPECT_NE(std::string(e.what()).find("not ready"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(vmm.socket_path()), std::string::npos) << e.what();
  }
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_GE(vmm.refused(), 3);  // retried with a short backoff, not once
}

TEST(VsockConnect, MissingSocketFailsAtOnceWithoutRetry) {
  const auto start = Clock::now();
  try {
    vsock_connect({"/nonexistent/ksbox.sock", 1024}, {.timeout = 5000ms, .retry_unreachable_socket = false});
    FAIL() << "connected";
  } catch (const ConnectError& e) {
    EXPECT_EQ(e.reason(), ConnectError::Reason::kUnreachable);
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - start, 500ms);
}

TEST(VsockConnect, MissingSocketIsRetriedUntilItAppears) {
  FakeVmm vmm([](testing::AgentConn& a) { a.wait_closed(2000ms); });
  // Connect through a symlink that appears only after a while, as a VMM
  // creating its socket late would.
  const std::string link = vmm.socket_path() + ".late";
  std::thread maker([&] {
    std::this_thread::sleep_for(100ms);
    ASSERT_EQ(::symlink(vmm.socket_path().c_str(), link.c_str()), 0);
  });
  UniqueFd fd = vsock_connect({link, 1024}, {.timeout = 3000ms});
  maker.join();
  EXPECT_TRUE(fd.valid());
  ::unlink(link.c_str());
}

TEST(VsockConnect, CancelFdStopsTheRetries) {
  FakeVmm vmm([](testing::AgentConn&) {}, /*refuse_first=*/-1);
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC));
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    const uint64_t one = 1;
    ASSERT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
  });
  const auto start = Clock::now();
  try {
    vsock_connect({vmm.socket_path(), 1024}, {.timeout = 5000ms, .cancel_fd = efd.get()});
    ADD_FAILURE() << "connected";
  } catch (const ConnectError& e) {
    EXPECT_EQ(e.reason(), ConnectError::Reason::kCancelled);
  }
  canceller.join();
  EXPECT_LT(Clock::now() - start, 1000ms);
}

// A VMM that answers the handshake with `reply` and then waits.
class RawVmm {
 public:
  explicit RawVmm(std::string reply) : reply_(std::move(reply)) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ksbox-cli-raw.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    path_ = dir_ + "/s";
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path_.c_str());
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(fd_.get(), 4), 0);
    thread_ = std::thread([this] {
      UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      char buf[64];
      (void)!::recv(c.get(), buf, sizeof(buf), 0);
      (void)!::send(c.get(), reply_.data(), reply_.size(), MSG_NOSIGNAL);
      (void)!::recv(c.get(), buf, sizeof(buf), 0);  // until the client closes
    });
  }
  ~RawVmm() {
    thread_.join();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string reply_, dir_, path_;
  UniqueFd fd_;
  std::thread thread_;
};

TEST(VsockConnect, AnyReplyButOkIsAProtocolError) {
  for (const char* reply : {"NOPE\n", "OK\n", "OK 12x\n", "ok 5\n"}) {
    RawVmm vmm(reply);
    try {
      vsock_connect({vmm.path(), 1024}, {.timeout = 2000ms});
      ADD_FAILURE() << "accepted " << reply;
    } catch (const ConnectError& e) {
      EXPECT_EQ(e.reason(), ConnectError::Reason::kProtocol) << reply << ": " << e.what();
    }
  }
}

TEST(VsockConnect, OverlongReplyLineIsRefused) {
  RawVmm vmm(std::string(200, 'O'));
  try {
    vsock_connect({vmm.path(), 1024}, {.timeout = 2000ms});
    ADD_FAILURE() << "accepted";
  } catch (const ConnectError& e) {
    EXPECT_EQ(e.reason(), ConnectError::Reason::kProtocol) << e.what();
  }
}

TEST(VsockConnect, RefusesAnOverlongSocketPath) {
  EXPECT_THROW(vsock_connect({std::string(200, 'x'), 1024}, {.timeout = 100ms}), Error);
}

}  // namespace
}  // namespace ksbox::cli
