#include "devices/net/packet_view.h"

namespace ksbox::devices::net {
namespace {

constexpr size_t kEth = 14;

uint16_t be16(std::span<const uint8_t> b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }
uint32_t be32(std::span<const uint8_t> b, size_t at) {
  return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | b[at + 3];
}

}  // namespace

std::optional<uint16_t> ether_type(std::span<const uint8_t> frame) {
  if (frame.size() < kEth) return std::nullopt;
  return be16(frame, 12);
}

std::optional<Ipv4View> parse_ipv4(std::span<const uint8_t> frame) {
  if (ether_type(frame) != kEtherTypeIpv4 || frame.size() < kEth + 20) return std::nullopt;
  const auto ip = frame.subspan(kEth);
  if (ip[0] >> 4 != 4) return std::nullopt;
  const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
  const size_t total = be16(ip, 2);
  if (ihl < 20 || total < ihl || total > ip.size()) return std::nullopt;
  Ipv4View v;
  v.src = be32(ip, 12);
  v.dst = be32(ip, 16);
  v.protocol = ip[9];
  v.fragment = (be16(ip, 6) & 0x3fff) != 0;
  v.payload = ip.subspan(ihl, total - ihl);
  return v;
}

std::optional<L4View> parse_l4(std::span<const uint8_t> frame) {
  const auto ip = parse_ipv4(frame);
  if (!ip || ip->fragment) return std::nullopt;
  const auto p = ip->payload;
  L4View v;
  v.protocol = ip->protocol;
  v.src = ip->src;
  v.dst = ip->dst;
  if (ip->protocol == kIpProtoUdp) {
    if (p.size() < 8) return std::nullopt;
    const size_t len = be16(p, 4);
    if (len < 8 || len > p.size()) return std::nullopt;
    v.sport = be16(p, 0);
    v.dport = be16(p, 2);
    v.payload = p.subspan(8, len - 8);
    return v;
  }
  if (ip->protocol == kIpProtoTcp) {
    if (p.size() < 20) return std::nullopt;
    const size_t off = size_t{p[12]} >> 4 << 2;
    if (off < 20 || off > p.size()) return std::nullopt;
    v.sport = be16(p, 0);
    v.dport = be16(p, 2);
    v.tcp_flags = p[13];
    v.tcp_seq = be32(p, 4);
    v.payload = p.subspan(off);
    return v;
  }
  return std::nullopt;
}

}  // namespace ksbox::devices::net
