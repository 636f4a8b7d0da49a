// net_probe: a guest tool for the network tests (static, in the test
// initramfs). `net_probe garbage IFACE COUNT SEED` writes COUNT malformed
// Ethernet frames straight onto IFACE through an AF_PACKET socket: random
// bytes, and IPv4/ARP/TCP/UDP/ICMP/DHCP/DNS frames with valid IP header
// checksums (so they get past the first check) but broken lengths, offsets,
// options and payloads. Prints "sent N" and exits 0 when the socket worked.
//
// For benchmarks/net, TCP against its peer (benchmarks/net/peer.py), timed
// with CLOCK_MONOTONIC in the guest; each prints one "NETBENCH <metric> <v>":
//   net_probe tcp-send HOST PORT MIB   MIB MiB to the peer, until it acks
//   net_probe tcp-recv HOST PORT MIB   MIB MiB from the peer
//   net_probe tcp-rr HOST PORT COUNT   COUNT 1-byte request/response round
//                                      trips on one connection (median)
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/garbage_frames.h"

namespace {

using Clock = std::chrono::steady_clock;

int connect_tcp(const char* host, const char* port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::strtoul(port, nullptr, 10)));
  if (::inet_pton(AF_INET, host, &a.sin_addr) != 1) return -1;
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    std::perror("connect");
    return -1;
  }
  const int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

bool write_all(int s, const void* p, size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(s, b, n);
    if (w <= 0) return false;
    b += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// tcp-send / tcp-recv / tcp-rr against benchmarks/net/peer.py.
int tcp_mode(const std::string& mode, const char* host, const char* port, long n) {
  const auto t0 = Clock::now();
  const int s = connect_tcp(host, port);
  if (s < 0 || n <= 0) return 1;
  std::vector<char> buf(256 * 1024, 'x');
  if (mode == "tcp-send" || mode == "tcp-recv") {
    const uint64_t bytes = static_cast<uint64_t>(n) << 20;
    const std::string line = (mode == "tcp-send" ? "S " : "R ") + std::to_string(bytes) + "\n";
    if (!write_all(s, line.data(), line.size())) return 1;
    uint64_t done = 0;
    if (mode == "tcp-send") {
      for (; done < bytes; done += std::min<uint64_t>(buf.size(), bytes - done))
        if (!write_all(s, buf.data(), std::min<uint64_t>(buf.size(), bytes - done))) return 1;
      char ack;
      if (::read(s, &ack, 1) != 1) return 1;  // the peer has every byte
    } else {
      while (done < bytes) {
        const ssize_t r = ::read(s, buf.data(), buf.size());
        if (r <= 0) return 1;
        done += static_cast<uint64_t>(r);
      }
    }
    std::printf("NETBENCH %s_mibps %.1f\n", mode == "tcp-send" ? "guest_to_host" : "host_to_guest",
                static_cast<double>(bytes) / (1 << 20) / seconds_since(t0));
  } else if (mode == "tcp-rr") {
    if (!write_all(s, "E\n", 2)) return 1;
    std::vector<double> us;
    for (long i = 0; i < n; ++i) {
      const auto t = Clock::now();
      char c = 'x';
      if (!write_all(s, &c, 1) || ::read(s, &c, 1) != 1) return 1;
      us.push_back(seconds_since(t) * 1e6);
    }
    std::sort(us.begin(), us.end());
    std::printf("NETBENCH rr_p50_us %.1f\n", us[us.size() / 2]);
  } else {
    return 2;
  }
  ::close(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]).starts_with("tcp-"))
    return tcp_mode(argv[1], argv[2], argv[3], std::strtol(argv[4], nullptr, 10));
  if (argc != 5 || std::string(argv[1]) != "garbage") {
    std::fprintf(stderr,
                 "usage: net_probe garbage IFACE COUNT SEED\n"
                 "       net_probe tcp-send|tcp-recv|tcp-rr HOST PORT MIB|COUNT\n");
    return 2;
  }
  const unsigned ifindex = ::if_nametoindex(argv[2]);
  const long count = std::strtol(argv[3], nullptr, 10);
  if (ifindex == 0) {
    std::perror("if_nametoindex");
    return 1;
  }
  const int s = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // protocol 0: send only
  if (s < 0) {
    std::perror("socket(AF_PACKET)");
    return 1;
  }
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(ifindex);
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  ksbox::test::garbage::FrameGenerator gen(static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10)));
  long sent = 0;
  for (long i = 0; i < count; ++i) {
    const auto f = gen.frame();
    if (::sendto(s, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == static_cast<ssize_t>(f.size()))
      ++sent;
  }
  std::printf("sent %ld\n", sent);
  ::close(s);
  return sent > 0 ? 0 : 1;
}
