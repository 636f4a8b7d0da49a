// The vsock device under hostile or careless peers: a process out of file
// descriptors, hosts that never read, guests that reuse a tuple before our
// RST arrived or stop reading, and who may connect to the listener.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "devices/vsock/muxer.h"
#include "tests/unit/devices/vsock/vsock_fixture.h"

namespace ksbox::devices::vsock::testing {
namespace {

constexpr auto kLinger = std::chrono::milliseconds(200);
constexpr size_t kBufferCap = 16 * 1024;

class VsockHardeningTest : public VsockTest {
 protected:
  MuxerLimits limits() const override {
    MuxerLimits l;
    l.linger_timeout = kLinger;
    return l;
  }
};

// A device-wide buffer cap below what one stream can buffer.
class VsockBufferCapTest : public VsockTest {
 protected:
  static constexpr auto kCapLinger = std::chrono::milliseconds(1000);
  MuxerLimits limits() const override {
    MuxerLimits l;
    l.linger_timeout = kCapLinger;
    l.max_buffered_to_host = kBufferCap;
    return l;
  }
};

std::vector<uint8_t> hardening_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 7;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

double process_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool connect_fd(int fd, const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

// Leaves the process without a free file descriptor: RLIMIT_NOFILE lowered
// to just above the highest open fd and every hole below it filled. The
// destructor gives everything back.
class FdExhaustion {
 public:
  FdExhaustion() {
    if (::getrlimit(RLIMIT_NOFILE, &saved_) < 0) return;
    int highest = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (const dirent* e = ::readdir(d)) highest = std::max(highest, std::atoi(e->d_name));
      ::closedir(d);
    }
    fillers_.reserve(static_cast<size_t>(highest) + 16);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(highest) + 1;
    if (::setrlimit(RLIMIT_NOFILE, &low) < 0) return;
    lowered_ = true;
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        exhausted_ = errno == EMFILE;
        break;
      }
      fillers_.push_back(fd);
    }
  }
  ~FdExhaustion() { release(); }
  FdExhaustion(const FdExhaustion&) = delete;
  FdExhaustion& operator=(const FdExhaustion&) = delete;

  bool exhausted() const { return exhausted_; }
  void release() {
    for (const int fd : fillers_) ::close(fd);
    fillers_.clear();
    if (lowered_) ::setrlimit(RLIMIT_NOFILE, &saved_);
    lowered_ = false;
  }

 private:
  rlimit saved_{};
  bool lowered_ = false;
  bool exhausted_ = false;
  std::vector<int> fillers_;
};

// --- 1. Out of file descriptors ------------------------------------------------------

TEST_F(VsockHardeningTest, ListenerRestsWhileTheProcessIsOutOfFds) {
  auto& g = start_guest();
  // Made before the fds run out; connect() itself needs no new fd.
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(client);
  {
    FdExhaustion no_fds;
    ASSERT_TRUE(no_fds.exhausted());
    ASSERT_TRUE(connect_fd(client.get(), path_));
    ASSERT_TRUE(write_all(client.get(), "CONNECT 1024\n"));
    // The device thread cannot accept the client: it must wait, not spin.
    const double before = process_cpu_seconds();
    std::this_thread::sleep_for(300ms);
    const double used = process_cpu_seconds() - before;
    EXPECT_LT(used, 0.05) << "the device thread burnt CPU while out of fds";
    EXPECT_GE(dev_->stats().accept_pauses, 1u);
    EXPECT_FALSE(g.recv(0ms).has_value());
  }
  // Fds are back: the queued client is served.
  auto req = g.recv(2000ms);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->hdr.op, VIRTIO_VSOCK_OP_REQUEST);
  EXPECT_EQ(req->hdr.dst_port, 1024u);
}

TEST(VsockFdLimitTest, LimitsThatFitAreKept) {
  MuxerLimits l;
  l.max_connections = 1000;
  l.max_pending_clients = 50;
  const MuxerLimits f = fit_to_fd_limit(l, 1000 + 50 + kFdHeadroom);
  EXPECT_EQ(f.max_connections, 1000u);
  EXPECT_EQ(f.max_pending_clients, 50u);
}

TEST(VsockFdLimitTest, LimitsThatDoNotFitShrink) {
  const MuxerLimits d;  // 1024 streams + 64 clients do not fit in 1024 fds
  const MuxerLimits f = fit_to_fd_limit(d, 1024);
  EXPECT_LE(f.max_connections + f.max_pending_clients + kFdHeadroom, 1024u);
  EXPECT_GE(f.max_connections, 800u);
  EXPECT_GE(f.max_pending_clients, 1u);
  const MuxerLimits tiny = fit_to_fd_limit(d, 10);  // still usable, if barely
  EXPECT_GE(tiny.max_connections, 1u);
  EXPECT_GE(tiny.max_pending_clients, 1u);
  MuxerLimits huge;
  huge.max_connections = SIZE_MAX;  // no overflow
  EXPECT_LE(fit_to_fd_limit(huge, 4096).max_connections, 4096u);
}

TEST(VsockFdLimitTest, MuxerFitsItsLimitsToRlimitNofile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur < 512) GTEST_SKIP() << "soft limit already low";
  rlimit low = saved;
  low.rlim_cur = 512;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  MuxerLimits fitted;
  try {
    Muxer m(dir.path() + "/m.sock", kGuestCid, MuxerLimits{});
    fitted = m.limits();
  } catch (...) {
    ::setrlimit(RLIMIT_NOFILE, &saved);
    throw;
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_LE(fitted.max_connections + fitted.max_pending_clients + kFdHeadroom, 512u);
  EXPECT_GE(fitted.max_connections, 1u);
}

// --- 2. Bytes the host never takes ----------------------------------------------------

// Fills the guest's whole credit (256 KiB) on `s` with bytes the host does
// not read; the host socket takes less than that, the device buffers the rest.
std::vector<uint8_t> fill_credit(GuestStream& s) {
  std::vector<uint8_t> all;
  for (uint32_t i = 0; i < 4; ++i) {
    const auto chunk = hardening_bytes(64 * 1024, i);
    s.send_data(chunk);
    all.insert(all.end(), chunk.begin(), chunk.end());
  }
  return all;
}

TEST_F(VsockHardeningTest, StreamLingeringWithUnreadBytesIsReset) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  fill_credit(s);
  ASSERT_GT(dev_->stats().bytes_buffered_to_host, 0u) << "the host socket took everything: nothing to linger";
  s.send(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND);
  const auto start = std::chrono::steady_clock::now();
  auto p = g.recv_skip_credit(2000ms);
  ASSERT_TRUE(p) << "the stream lives on with its buffer";
  EXPECT_EQ(p->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_TRUE(s.is_for_me(*p));
  EXPECT_GE(std::chrono::steady_clock::now() - start, kLinger - 50ms);
  const auto st = dev_->stats();
  EXPECT_EQ(st.connections, 0u);
  EXPECT_EQ(st.bytes_buffered_to_host, 0u);
  EXPECT_EQ(st.linger_resets, 1u);
  EXPECT_EQ(st.host_connects_failed, 0u);
}

TEST_F(VsockHardeningTest, BothShutStreamWithUnreadBytesIsReset) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  fill_credit(s);
  ASSERT_GT(dev_->stats().bytes_buffered_to_host, 0u);
  s.send(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV);
  auto p = g.recv_skip_credit(2000ms);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->stats().connections, 0u);
  EXPECT_EQ(dev_->stats().bytes_buffered_to_host, 0u);
}

TEST_F(VsockHardeningTest, HostThatReadsWithinTheLingerTimeGetsEverything) {
  start_guest();
  auto [fd, s] = open_host_stream(1024);
  const auto sent = fill_credit(s);
  s.send(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND);
  std::this_thread::sleep_for(kLinger / 2);
  EXPECT_EQ(read_n(fd.get(), sent.size()), std::string(sent.begin(), sent.end()));
  char c;
  EXPECT_EQ(::recv(fd.get(), &c, 1, 0), 0);  // EOF, not a reset
  EXPECT_EQ(dev_->stats().linger_resets, 0u);
}

TEST_F(VsockBufferCapTest, TxStopsAtTheDeviceWideBufferCapUntilHostsDrain) {
  auto& g = start_guest();
  auto a = open_host_stream(1024);
  auto b = open_host_stream(1025);
  const auto sent = fill_credit(a.guest);
  ASSERT_GE(dev_->stats().bytes_buffered_to_host, kBufferCap) << "the host socket took (nearly) everything";
  b.guest.send_data("hello");
  // Over the cap the device leaves TX on the ring: b's bytes wait too.
  EXPECT_LT(g.tx_used(), g.tx_published());
  EXPECT_GE(dev_->stats().tx_buffer_stalls, 1u);
  pollfd p{b.fd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 100), 0) << "TX went on above the cap";
  // a's host reads: the buffer drains and TX resumes.
  EXPECT_EQ(read_n(a.fd.get(), sent.size()), std::string(sent.begin(), sent.end()));
  EXPECT_EQ(read_n(b.fd.get(), 5), "hello");
  EXPECT_EQ(g.tx_used(), g.tx_published());
  EXPECT_EQ(dev_->stats().bytes_buffered_to_host, 0u);
  EXPECT_EQ(dev_->stats().linger_resets, 0u);
}

TEST_F(VsockBufferCapTest, HostsThatTakeNothingWhileTxIsStoppedLoseTheirStreams) {
  auto& g = start_guest();
  auto a = open_host_stream(1024);
  auto b = open_host_stream(1025);
  fill_credit(a.guest);
  ASSERT_GE(dev_->stats().bytes_buffered_to_host, kBufferCap);
  // Stuck behind the cap: the guest cannot even close the stream.
  a.guest.send(VIRTIO_VSOCK_OP_RST);
  b.guest.send_data("hello");
  ASSERT_LT(g.tx_used(), g.tx_published());
  // a's host never reads: after the linger time a is reset and TX goes on.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(read_n(b.fd.get(), 5), "hello");
  EXPECT_GE(std::chrono::steady_clock::now() - start, kCapLinger - 100ms);
  EXPECT_EQ(dev_->stats().linger_resets, 1u);
  EXPECT_EQ(dev_->stats().bytes_buffered_to_host, 0u);
  EXPECT_EQ(g.tx_used(), g.tx_published());
  EXPECT_EQ(dev_->stats().connections, 1u);  // b only
}

// --- 3. A REQUEST reusing a tuple whose RST is still pending -------------------------

TEST_F(VsockHardeningTest, RequestReplacesAClosedStreamWhoseRstIsPending) {
  auto& g = start_guest(Layout::kSplit, 1);
  g.set_auto_repost(false);
  UniqueFd server = listen_host(path_ + "_5000");
  ASSERT_TRUE(server);
  GuestStream s{g, 40000, 5000};
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  auto resp = g.recv();
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->hdr.op, VIRTIO_VSOCK_OP_RESPONSE);
  UniqueFd first = accept_host(server.get());
  ASSERT_TRUE(first);
  // The guest closes; with no RX buffer posted our RST has to wait.
  s.send(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV);
  // It connects again from the same port before the RST arrived.
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  g.post_rx(4);
  auto next = g.recv(1000ms);
  ASSERT_TRUE(next) << "the REQUEST was dropped";
  EXPECT_EQ(next->hdr.op, VIRTIO_VSOCK_OP_RESPONSE) << "op " << next->hdr.op;
  EXPECT_TRUE(s.is_for_me(*next));
  auto stale = g.recv(200ms);
  EXPECT_FALSE(stale && stale->hdr.op == VIRTIO_VSOCK_OP_RST) << "a stale RST reset the new stream";
  UniqueFd second = accept_host(server.get());
  ASSERT_TRUE(second);
  s.send_data("again");
  EXPECT_EQ(read_n(second.get(), 5), "again");
  EXPECT_EQ(dev_->stats().connections, 1u);
}

TEST_F(VsockHardeningTest, RstOwedForAnEarlierPacketDoesNotResetTheNewStream) {
  auto& g = start_guest(Layout::kSplit, 1);
  g.set_auto_repost(false);
  UniqueFd server = listen_host(path_ + "_5001");
  ASSERT_TRUE(server);
  // Use up the only RX buffer, so the RST below has to wait in the backlog.
  GuestStream other{g, 40001, 5001};
  other.send(VIRTIO_VSOCK_OP_REQUEST);
  ASSERT_TRUE(g.recv());
  GuestStream s{g, 40002, 5001};
  s.send_data("stray");  // no such stream: we owe the guest an RST
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  g.post_rx(4);
  auto next = g.recv(1000ms);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->hdr.op, VIRTIO_VSOCK_OP_RESPONSE) << "op " << next->hdr.op;
  EXPECT_TRUE(s.is_for_me(*next));
}

// --- 4. The guest stops reading --------------------------------------------------------

TEST_F(VsockHardeningTest, HostWriterFailsOnceTheGuestShutsReceiving) {
  start_guest();
  auto [fd, s] = open_host_stream(1024);
  s.send(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_RCV);
  const auto chunk = hardening_bytes(4096, 9);
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  int err = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      err = errno;
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << "the host writer never learnt: " << std::strerror(err);
}

// --- 5. Who may connect ---------------------------------------------------------------

TEST_F(VsockHardeningTest, ListenerSocketIsOwnerOnlyWhateverTheUmask) {
  const mode_t old = ::umask(0);
  std::unique_ptr<VirtioVsock> open_dev;
  try {
    open_dev = std::make_unique<VirtioVsock>(dir_.path() + "/umask0.sock", kGuestCid);
  } catch (...) {
    ::umask(old);
    throw;
  }
  ::umask(old);
  struct stat st{};
  ASSERT_EQ(::stat(open_dev->path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // Still usable by its owner.
  EXPECT_TRUE(connect_host(open_dev->path()));
}

}  // namespace
}  // namespace ksbox::devices::vsock::testing
