// End to end: the guest's network over virtio-net and the VMM's user-mode
// network (libslirp). Servers are started by the test where the VMM runs
// (inside the nested harness's L1 when the host has no /dev/kvm): an HTTP
// server on the host's loopback, fetched from the guest at the gateway
// address, and a server in the guest reached through --publish. For
// --network filtered, a fake DNS server with the zones allowed.test and
// blocked.test, whose addresses are given to the L1 machine's loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/background.h"
#include "tests/e2e/control_client.h"
#include "tests/e2e/guest.h"
#include "tests/e2e/guest_test.h"
#include "tests/e2e/process.h"
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
  // The control socket lives where the VMM runs (L1's /tmp in the harness).
  const std::string ctl = "/tmp/ksbox-net-ctl-" + std::to_string(::getpid()) + ".sock";
  boot({"--network", "user", "--publish", "127.0.0.1:" + std::to_string(published) + ":8080", "--control", ctl});
  const auto net_stats = [&] { return control_request(ctl, {{"cmd", "net"}}); };

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
  // The driver took every packet: a mergeable packet it sees only part of is
  // dropped as a length error, and TCP then waits a retransmit timeout.
  r = sh("cd /sys/class/net/eth0/statistics && cat rx_length_errors rx_dropped");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "0\n0\n");
  // And the device dropped none on its side; it counted the download.
  auto stats = net_stats();
  ASSERT_TRUE(stats.is_object() && stats["network"] == true) << stats.dump();
  EXPECT_EQ(stats["rx"]["dropped"], (nlohmann::json{{"inactive", 0}, {"backlog", 0}, {"too_big", 0}})) << stats.dump();
  EXPECT_GT(stats["rx"]["bytes"].get<uint64_t>(), 4000000u) << stats.dump();
  EXPECT_TRUE(stats["backend"].contains("slirp_guest_errors")) << stats.dump();
  const uint64_t tx_before_garbage = stats["tx"]["frames"].get<uint64_t>();

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
  stats = net_stats();
  EXPECT_GE(stats["tx"]["frames"].get<uint64_t>(), tx_before_garbage + 3000) << stats.dump();
  r = sh("wget -q -O - http://10.0.2.2:" + std::to_string(http_port) + "/blob | md5sum");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, host_md5);
  EXPECT_TRUE(sb_->vmm().running());
}

// A DNS server for the filtered test: allowed.test and blocked.test have A
// records, every other name is NXDOMAIN. Listens on UDP port 53 of every
// address of the machine.
constexpr const char* kFakeDns = R"(
import socket, struct
zones = {b'allowed.test': '192.0.2.10', b'blocked.test': '192.0.2.20'}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 53))
while True:
    q, peer = s.recvfrom(4096)
    i, labels = 12, []
    while i < len(q) and q[i] != 0:
        labels.append(q[i + 1:i + 1 + q[i]])
        i += 1 + q[i]
    if len(q) < i + 5:
        continue
    name, qtype = b'.'.join(labels).lower(), struct.unpack('>H', q[i + 1:i + 3])[0]
    addr = zones.get(name)
    answer = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + socket.inet_aton(addr) if addr and qtype == 1 else b''
    header = q[:2] + struct.pack('>HHHHH', 0x8180 | (0 if addr else 3), 1, 1 if answer else 0, 0, 0)
    s.sendto(header + q[12:i + 5] + answer, peer)
)";

std::vector<nlohmann::json> json_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The first line of `lines` with every field of `want`, or null.
nlohmann::json find_line(const std::vector<nlohmann::json>& lines, const nlohmann::json& want) {
  for (const auto& l : lines) {
    bool all = true;
    for (const auto& [k, v] : want.items()) all = all && l.contains(k) && l[k] == v;
    if (all) return l;
  }
  return nullptr;
}

TEST_F(NetTest, FilteredNetworkAllowsOnlyAllowedNamesTheirAddressesAndPorts) {
  // Two addresses of this (L1) machine stand for two hosts on the internet.
  // (L1 is thrown away after the test; on a host with KVM they are removed again.)
  struct TestAddresses {
    ProcessResult added = run_process(
        {"/bin/sh", "-c", "ip addr replace 192.0.2.10/32 dev lo && ip addr replace 192.0.2.20/32 dev lo"});
    ~TestAddresses() {
      run_process({"/bin/sh", "-c", "ip addr del 192.0.2.10/32 dev lo; ip addr del 192.0.2.20/32 dev lo"});
    }
  } addresses;
  if (addresses.added.exit_code != 0)
    GTEST_SKIP() << "cannot give lo the test addresses (needs root where the VMM runs): " << addresses.added.err;
  const char* tmp_root = std::getenv("TMPDIR");
  std::string scratch = std::string(tmp_root && *tmp_root ? tmp_root : "/tmp") + "/ksbox-netf-XXXXXX";
  ASSERT_NE(::mkdtemp(scratch.data()), nullptr);
  std::ofstream(scratch + "/dns.py") << kFakeDns;
  std::filesystem::create_directories(scratch + "/www");
  std::ofstream(scratch + "/www/hello") << "hello from allowed.test\n";
  const uint16_t http_port = free_port(), other_port = free_port();
  ASSERT_NE(other_port, http_port);
  BackgroundProcess dns({"/usr/bin/python3", scratch + "/dns.py"}, scratch + "/dns.log");
  BackgroundProcess http({"/usr/bin/python3", "-m", "http.server", std::to_string(http_port), "--bind", "0.0.0.0",
                          "--directory", scratch + "/www"},
                         scratch + "/http.log");
  BackgroundProcess other({"/usr/bin/python3", "-m", "http.server", std::to_string(other_port), "--bind", "0.0.0.0",
                           "--directory", scratch + "/www"},
                          scratch + "/other.log");
  for (int i = 0; i < 600 && !(accepts_connections(http_port) && accepts_connections(other_port)); ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(accepts_connections(http_port) && accepts_connections(other_port)) << "http.server did not start";
  ASSERT_TRUE(dns.running()) << "the fake DNS server did not start";

  const std::string log = scratch + "/egress.log";
  boot({"--network", "filtered", "--allow", "allowed.test", "--allow-port", std::to_string(http_port),
        "--dns-upstream", "127.0.0.1:53", "--egress-log", log});
  const std::string hp = std::to_string(http_port), op = std::to_string(other_port);

  // The allowed name resolves (through the VMM, from the fake server) and its address connects.
  auto r = sh("wget -q -O - http://allowed.test:" + hp + "/hello");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "hello from allowed.test\n");
  // The blocked name does not resolve: NXDOMAIN at once.
  r = sh("nslookup blocked.test 2>&1; wget -q -O - http://blocked.test:" + hp + "/hello 2>&1; true");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << sb_->describe(r);
  EXPECT_EQ(r.out.find("192.0.2.20"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("hello from"), std::string::npos) << r.out;
  // A literal IP (the very address blocked.test has), the allowed host on
  // another port, and the host's loopback at the gateway: refused (a reset).
  for (const std::string& url : {"http://192.0.2.20:" + hp, "http://allowed.test:" + op, "http://10.0.2.2:" + hp}) {
    r = sh("timeout 20 wget -q -O - " + url + "/hello 2>&1; echo status=$?");  // (busybox wget -T segfaults)
    EXPECT_NE(r.out.find("refused"), std::string::npos) << url << ": " << r.out;
    EXPECT_EQ(r.out.find("hello from"), std::string::npos) << url << ": " << r.out;
  }
  // Another DNS server: no answer comes back.
  r = sh("timeout 6 nslookup allowed.test 192.0.2.10 2>&1; echo status=$?");
  EXPECT_EQ(r.out.find("Address: 192.0.2.10"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("status=0"), std::string::npos) << r.out;

  // Garbage through the filter's parsers: the VMM and the network carry on.
  r = sh("net_probe garbage eth0 3000 11 && wget -q -O - http://allowed.test:" + hp + "/hello");
  ASSERT_OK(r);
  EXPECT_NE(r.out.find("hello from allowed.test"), std::string::npos) << r.out;
  EXPECT_TRUE(sb_->vmm().running());

  // The egress log, on the host, has a line for each attempt.
  const auto lines = json_lines(log);
  const auto has = [&](const nlohmann::json& want) {
    EXPECT_FALSE(find_line(lines, want).is_null()) << want.dump() << " not in " << log;
  };
  has({{"kind", "dns"}, {"allowed", true}, {"name", "allowed.test"}});
  has({{"kind", "connect"}, {"allowed", true}, {"name", "allowed.test"}, {"dst", "192.0.2.10"}, {"port", http_port}});
  has({{"kind", "dns"}, {"allowed", false}, {"name", "blocked.test"}, {"reason", "name not on the allowlist"}});
  has({{"kind", "connect"}, {"allowed", false}, {"dst", "192.0.2.20"}, {"port", http_port}});
  has({{"kind", "connect"}, {"allowed", false}, {"dst", "192.0.2.10"}, {"port", other_port},
       {"reason", "port not allowed"}});
  has({{"kind", "connect"}, {"allowed", false}, {"dst", "10.0.2.2"}, {"port", http_port}});
  has({{"kind", "packet"}, {"allowed", false}, {"dst", "192.0.2.10"}, {"port", 53}});
  for (const auto& l : lines) EXPECT_TRUE(l.contains("time")) << l.dump();
  std::filesystem::remove_all(scratch);
}

TEST_F(NetTest, NetworkOffMeansNoInterface) {
  boot({});  // off is the default
  auto r = sh("ls /sys/class/net; grep -c ksbox.net= /proc/cmdline; test ! -e /etc/resolv.conf");
  EXPECT_EQ(r.out, "lo\n0\n") << sb_->describe(r);
}

}  // namespace
}  // namespace ksbox::test
