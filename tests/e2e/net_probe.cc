// net_probe: a guest tool for the network tests (static, in the test
// initramfs). `net_probe garbage IFACE COUNT SEED` writes COUNT malformed
// Ethernet frames straight onto IFACE through an AF_PACKET socket: random
// bytes, and IPv4/ARP/TCP/UDP/ICMP/DHCP/DNS frames with valid IP header
// checksums (so they get past the first check) but broken lengths, offsets,
// options and payloads. Prints "sent N" and exits 0 when the socket worked.
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/support/garbage_frames.h"

int main(int argc, char** argv) {
  if (argc != 5 || std::string(argv[1]) != "garbage") {
    std::fprintf(stderr, "usage: net_probe garbage IFACE COUNT SEED\n");
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
