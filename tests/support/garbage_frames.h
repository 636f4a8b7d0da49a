// Malformed Ethernet frames for robustness tests: random bytes, and
// IPv4/ARP/TCP/UDP/ICMP/DHCP/DNS frames with valid IP header checksums (so
// they get past the first check) but broken lengths, offsets, options and
// payloads. Deterministic for a seed. Used by net_probe in the guest and by
// the slirp backend's unit test on the host.
#pragma once

#include <net/ethernet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace ksbox::test::garbage {

inline uint16_t csum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t{p[i]} << 8 | p[i + 1];
  if (n & 1) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}

class FrameGenerator {
 public:
  explicit FrameGenerator(uint32_t seed) : rng_(seed) {}
  uint32_t below(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
  uint8_t byte() { return static_cast<uint8_t>(below(256)); }
  void fill(std::vector<uint8_t>& f, size_t from) {
    for (size_t i = from; i < f.size(); ++i) f[i] = byte();
  }

  std::vector<uint8_t> frame() {
    switch (below(6)) {
      case 0: return random_bytes();
      case 1: return arp();
      default: return ipv4();
    }
  }

 private:
  std::vector<uint8_t> eth(size_t len, uint16_t type) {
    std::vector<uint8_t> f(std::max<size_t>(len, 14));
    std::memset(f.data(), 0xff, 6);  // broadcast
    const uint8_t src[6] = {0x02, 0x6b, 0x73, 0x62, 0x78, 0x01};
    std::memcpy(f.data() + 6, src, 6);
    put16(f, 12, type);
    fill(f, 14);
    return f;
  }
  std::vector<uint8_t> random_bytes() {
    std::vector<uint8_t> f(below(8) == 0 ? 14 + below(1500) : 1 + below(60));
    fill(f, 0);
    return f;
  }
  std::vector<uint8_t> arp() {
    auto f = eth(14 + below(60), ETHERTYPE_ARP);
    if (f.size() >= 22) {
      put16(f, 14, 1);       // Ethernet
      put16(f, 16, 0x0800);  // IPv4
      f[18] = below(2) ? 6 : byte();
      f[19] = below(2) ? 4 : byte();
      put16(f, 20, static_cast<uint16_t>(below(4)));
    }
    return f;
  }
  std::vector<uint8_t> ipv4() {
    static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_IGMP, 0, 255};
    const size_t l4 = below(4) == 0 ? below(1400) : below(80);
    auto f = eth(14 + 20 + l4, ETHERTYPE_IP);
    uint8_t* ip = f.data() + 14;
    const unsigned ihl = below(4) == 0 ? below(16) : 5 + (below(4) == 0 ? below(3) : 0);
    ip[0] = static_cast<uint8_t>(0x40 | ihl);
    const uint16_t tot = below(3) == 0 ? static_cast<uint16_t>(below(65536)) : static_cast<uint16_t>(20 + l4);
    put16(f, 16, tot);
    put16(f, 20, below(3) == 0 ? static_cast<uint16_t>(below(65536)) : 0x4000);  // flags / fragment offset
    ip[8] = byte();
    ip[9] = protos[below(sizeof protos)];
    const uint8_t dsts[][4] = {{10, 0, 2, 2}, {10, 0, 2, 3}, {10, 0, 2, 255}, {255, 255, 255, 255}, {8, 8, 8, 8}};
    const uint8_t src[4] = {10, 0, 2, 15};
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dsts[below(5)], 4);
    uint8_t* l4p = ip + 20;
    if (ip[9] == IPPROTO_UDP && l4 >= 8) {
      static const uint16_t ports[] = {53, 67, 69, 123, 7};
      put16(f, 34 + 2, ports[below(5)]);
      put16(f, 34 + 4, below(2) ? static_cast<uint16_t>(l4) : static_cast<uint16_t>(below(65536)));
      put16(f, 34 + 6, 0);  // no checksum: accepted as is
    }
    if (ip[9] == IPPROTO_TCP && l4 >= 20) {
      put16(f, 34 + 2, below(2) ? 80 : static_cast<uint16_t>(below(65536)));
      l4p[12] = static_cast<uint8_t>(below(16) << 4);  // data offset, often wrong
      put16(f, 34 + 16, 0);
      // A right checksum half the time, so the segment reaches the TCP state machine.
      if (below(2)) {
        std::vector<uint8_t> pseudo(ip + 12, ip + 20);
        pseudo.push_back(0);
        pseudo.push_back(IPPROTO_TCP);
        pseudo.push_back(static_cast<uint8_t>(l4 >> 8));
        pseudo.push_back(static_cast<uint8_t>(l4));
        const uint16_t p = static_cast<uint16_t>(~csum(pseudo.data(), pseudo.size()));
        put16(f, 34 + 16, csum(l4p, l4, p));
      }
    }
    put16(f, 24, 0);
    put16(f, 24, csum(ip, 20));  // a right header checksum (of the first 20 bytes)
    return f;
  }

  std::mt19937 rng_;
};

}  // namespace ksbox::test::garbage
