// End to end: the guest's network over virtio-net and the VMM's user-mode
// network (libslirp). Servers are started by the test where the VMM runs
// (inside the nested harness's L1 when the host has no /dev/kvm): an HTTP
// server on the host's loopback, fetched from the guest at the gateway
// address, and a server in the guest reached through --publish.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/background.h"
#include "tests/e2e/guest.h"
#include "tests/e2e/guest_test.h"
#include "tests/e2e/sandbox.h"

namespace ksbox::test {
namespace {

using namespace std::chrono_literals;

// A loopback port nobody uses right now (the kernel's pick).
uint16_t free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

bool accepts_connections(uint16_t port) {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

class NetTest : public GuestTest {
 protected:
  void boot(std::vector<std::string> vmm_args) { GuestTest::boot({.vmm_args = std::move(vmm_args)}); }
  ProcessResult sh(const std::string& script) {
    return sb_->exec({"sh", "-c", script}, {}, {.timeout = std::chrono::seconds(300)});
  }
};

#define ASSERT_OK(r) ASSERT_EQ((r).exit_code, 0) << sb_->describe(r)
#define EXPECT_OK(r) EXPECT_EQ((r).exit_code, 0) << sb_->describe(r)

TEST_F(NetTest, UserNetworkReachesHostLoopbackAndPublishedPortsReachTheGuest) {
  const uint16_t http_port = free_port(), published = free_port();
  ASSERT_NE(http_port, 0);
  ASSERT_NE(published, http_port);
  boot({"--network", "user", "--publish", "127.0.0.1:" + std::to_string(published) + ":8080"});

  // The agent configured eth0 from what the VMM advertised.
  auto r = sh("ip -4 addr show eth0; ip route; cat /etc/resolv.conf");
  ASSERT_OK(r);
  EXPECT_NE(r.out.find("inet 10.0.2.15/24"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("default via 10.0.2.2 dev eth0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nameserver 10.0.2.3"), std::string::npos) << r.out;

  // An HTTP server on the host's 127.0.0.1 is the guest's 10.0.2.2.
  r = host("set -e; mkdir www; head -c 4000000 /dev/urandom > www/blob; md5sum < www/blob");
  ASSERT_OK(r);
  const std::string host_md5 = r.out;
  BackgroundProcess server({"/usr/bin/python3", "-m", "http.server", std::to_string(http_port), "--bind", "127.0.0.1",
                            "--directory", sb_->dir() + "/www"},
                           sb_->dir() + "/http.log");
  for (int i = 0; i < 600 && server.running() && !accepts_connections(http_port); ++i) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(accepts_connections(http_port)) << "python3 -m http.server did not start";
  r = sh("wget -q -O - http://10.0.2.2:" + std::to_string(http_port) + "/blob | md5sum");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, host_md5);

  // A server in the guest, through --publish, from the host.
  r = sh("set -e; mkdir -p /tmp/www; head -c 4000000 /dev/urandom > /tmp/www/blob; md5sum < /tmp/www/blob; "
         "httpd -p 8080 -h /tmp/www");
  ASSERT_OK(r);
  const std::string guest_md5 = r.out;
  r = host("python3 - <<'EOF'\n"
           "import hashlib, time, urllib.request\n"
           "for i in range(50):\n"
           "    try:\n"
           "        data = urllib.request.urlopen('http://127.0.0.1:" + std::to_string(published) +
           "/blob', timeout=60).read()\n"
           "        break\n"
           "    except OSError:\n"
           "        time.sleep(0.2)\n"
           "print(hashlib.md5(data).hexdigest() + '  -')\n"
           "EOF");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, guest_md5);

  // Garbage frames straight onto the wire: the VMM keeps serving, and so
  // does the network.
  r = sh("net_probe garbage eth0 3000 7");
  ASSERT_OK(r);
  EXPECT_EQ(r.out.rfind("sent ", 0), 0u) << r.out;
  r = sh("wget -q -O - http://10.0.2.2:" + std::to_string(http_port) + "/blob | md5sum");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, host_md5);
  EXPECT_TRUE(sb_->vmm().running());
}

TEST_F(NetTest, NetworkOffMeansNoInterface) {
  boot({});  // off is the default
  auto r = sh("ls /sys/class/net; grep -c ksbox.net= /proc/cmdline; test ! -e /etc/resolv.conf");
  EXPECT_EQ(r.out, "lo\n0\n") << sb_->describe(r);
}

}  // namespace
}  // namespace ksbox::test
