// Builders of Ethernet/IPv4/UDP/TCP frames and DNS messages for the
// egress filter's tests (big-endian wire fields, no checksums).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "devices/net/dns_message.h"
#include "devices/net/packet_view.h"

namespace ksbox::devices::net::testing {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

// Ethernet + IPv4 (no options) + `l4` with protocol `proto`, 10.0.2.15 → `dst`.
inline Bytes ipv4_frame(uint8_t proto, const Bytes& l4, uint32_t dst = 0x0a000203, uint16_t frag = 0x4000) {
  Bytes f = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0};
  put16(f, static_cast<uint16_t>(20 + l4.size()));
  put16(f, 0);
  put16(f, frag);
  f.insert(f.end(), {64, proto, 0, 0, 10, 0, 2, 15});
  for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<uint8_t>(dst >> s));
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

inline Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, static_cast<uint16_t>(8 + payload.size()));
  put16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  return u;
}

inline Bytes name(std::initializer_list<std::string> labels) {
  Bytes b;
  for (const auto& l : labels) {
    b.push_back(static_cast<uint8_t>(l.size()));
    b.insert(b.end(), l.begin(), l.end());
  }
  b.push_back(0);
  return b;
}

inline Bytes dns_query(const Bytes& qname, uint16_t qtype = kDnsTypeA) {
  Bytes m = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  m.insert(m.end(), qname.begin(), qname.end());
  put16(m, qtype);
  put16(m, kDnsClassIn);
  return m;
}

// A response to dns_query(qname): a CNAME (compressed owner), then A records.
inline Bytes dns_response(const Bytes& qname, const std::vector<uint32_t>& addrs) {
  Bytes m = dns_query(qname);
  m[2] = 0x81;
  m[3] = 0x80;
  m[7] = static_cast<uint8_t>(1 + addrs.size());
  m.insert(m.end(), {0xc0, 12});
  put16(m, 5);
  put16(m, kDnsClassIn);
  m.insert(m.end(), {0, 0, 0, 60});
  const Bytes target = name({"edge", "cdn", "net"});
  put16(m, static_cast<uint16_t>(target.size()));
  const size_t target_at = m.size();
  m.insert(m.end(), target.begin(), target.end());
  for (uint32_t a : addrs) {
    m.insert(m.end(), {0xc0, static_cast<uint8_t>(target_at)});
    put16(m, kDnsTypeA);
    put16(m, kDnsClassIn);
    m.insert(m.end(), {0, 0, 0, 60});
    put16(m, 4);
    for (int s = 24; s >= 0; s -= 8) m.push_back(static_cast<uint8_t>(a >> s));
  }
  return m;
}

// A TCP header to `port` with `flags`, no options.
inline Bytes tcp(uint16_t port, uint8_t flags) {
  Bytes t(20, 0);
  t[2] = static_cast<uint8_t>(port >> 8);
  t[3] = static_cast<uint8_t>(port);
  t[12] = 5 << 4;
  t[13] = flags;
  return t;
}

}  // namespace ksbox::devices::net::testing
