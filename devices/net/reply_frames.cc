#include "devices/net/reply_frames.h"

#include <algorithm>

#include "devices/net/frame.h"

namespace ksbox::devices::net {
namespace {

constexpr size_t kEth = 14, kIp = 20, kUdp = 8, kTcp = 20;
constexpr uint8_t kTtl = 64;

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  put16(b, at, static_cast<uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<uint16_t>(v));
}

// Ethernet + IPv4 headers from the peer to the guest around `l4_len` bytes
// of protocol `proto` (left zero for the caller to fill).
std::vector<uint8_t> ipv4_to_guest(const FlowEnds& e, uint8_t proto, size_t l4_len) {
  std::vector<uint8_t> f(kEth + kIp + l4_len, 0);
  std::copy(e.guest_mac.begin(), e.guest_mac.end(), f.begin());
  std::copy(e.peer_mac.begin(), e.peer_mac.end(), f.begin() + 6);
  put16(f, 12, kEtherTypeIpv4);
  f[kEth] = 0x45;
  put16(f, kEth + 2, static_cast<uint16_t>(kIp + l4_len));
  put16(f, kEth + 6, 0x4000);  // DF
  f[kEth + 8] = kTtl;
  f[kEth + 9] = proto;
  put32(f, kEth + 12, e.peer_ip);
  put32(f, kEth + 16, e.guest_ip);
  put16(f, kEth + 10, static_cast<uint16_t>(~ones_complement_sum(std::span(f).subspan(kEth, kIp))));
  return f;
}

// The TCP/UDP checksum over the pseudo-header and the segment at kEth + kIp.
uint16_t l4_checksum(const std::vector<uint8_t>& f, uint8_t proto) {
  const auto seg = std::span(f).subspan(kEth + kIp);
  const auto addrs = std::span(f).subspan(kEth + 12, 8);
  const uint32_t pseudo = ones_complement_sum(addrs) + uint32_t{proto} + static_cast<uint32_t>(seg.size());
  const uint16_t sum = static_cast<uint16_t>(~ones_complement_sum(seg, pseudo));
  return proto == kIpProtoUdp && sum == 0 ? 0xffff : sum;  // UDP: 0 means "no checksum"
}

}  // namespace

FlowEnds flow_ends(std::span<const uint8_t> frame, const L4View& l4) {
  FlowEnds e;
  std::copy_n(frame.begin(), 6, e.peer_mac.begin());
  std::copy_n(frame.begin() + 6, 6, e.guest_mac.begin());
  e.guest_ip = l4.src;
  e.peer_ip = l4.dst;
  e.guest_port = l4.sport;
  e.peer_port = l4.dport;
  return e;
}

std::vector<uint8_t> udp_to_guest(const FlowEnds& e, std::span<const uint8_t> payload) {
  auto f = ipv4_to_guest(e, kIpProtoUdp, kUdp + payload.size());
  const size_t u = kEth + kIp;
  put16(f, u, e.peer_port);
  put16(f, u + 2, e.guest_port);
  put16(f, u + 4, static_cast<uint16_t>(kUdp + payload.size()));
  std::copy(payload.begin(), payload.end(), f.begin() + static_cast<ptrdiff_t>(u + kUdp));
  put16(f, u + 6, l4_checksum(f, kIpProtoUdp));
  return f;
}

std::vector<uint8_t> tcp_reset_to_guest(const FlowEnds& e, const L4View& syn) {
  auto f = ipv4_to_guest(e, kIpProtoTcp, kTcp);
  const size_t t = kEth + kIp;
  put16(f, t, e.peer_port);
  put16(f, t + 2, e.guest_port);
  put32(f, t + 4, 0);
  put32(f, t + 8, syn.tcp_seq + 1 + static_cast<uint32_t>(syn.payload.size()));
  f[t + 12] = (kTcp / 4) << 4;
  f[t + 13] = kTcpRst | kTcpAck;
  put16(f, t + 16, l4_checksum(f, kIpProtoTcp));
  return f;
}

std::vector<uint8_t> dns_nxdomain(std::span<const uint8_t> query, const DnsMessage& q) {
  constexpr uint8_t kQr = 0x80, kRd = 0x01, kRa = 0x80, kNxDomain = 3;
  std::vector<uint8_t> m(query.begin(), query.begin() + static_cast<ptrdiff_t>(q.question_end));
  m[2] = static_cast<uint8_t>(kQr | (query[2] & kRd));  // opcode 0 (a query), RD as asked
  m[3] = kRa | kNxDomain;
  std::fill(m.begin() + 6, m.begin() + 12, 0);  // no answer, authority or additional records
  return m;
}

}  // namespace ksbox::devices::net
