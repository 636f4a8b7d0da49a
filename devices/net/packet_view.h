// Read-only views of the headers of an Ethernet frame from the guest:
// IPv4 with TCP or UDP, as the egress filter needs them (who talks to whom
// on which port, and the UDP payload for DNS). Every length and offset is
// checked against the frame; a frame that does not parse is simply not
// recognised (the filter then drops it).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace ksbox::devices::net {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800, kEtherTypeArp = 0x0806, kEtherTypeIpv6 = 0x86dd;
inline constexpr uint8_t kIpProtoTcp = 6, kIpProtoUdp = 17, kIpProtoIcmp = 1;
inline constexpr uint8_t kTcpSyn = 0x02, kTcpAck = 0x10, kTcpRst = 0x04;

struct Ipv4View {
  uint32_t src = 0, dst = 0;  // host byte order
  uint8_t protocol = 0;
  bool fragment = false;           // MF set or a nonzero offset
  std::span<const uint8_t> payload;  // after the header, cut at the total length
};

struct L4View {
  uint8_t protocol = 0;  // kIpProtoTcp or kIpProtoUdp
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0;             // TCP only
  uint32_t tcp_seq = 0;              // TCP only
  std::span<const uint8_t> payload;  // TCP: after the options; UDP: cut at the UDP length
};

// The EtherType of `frame`, or nullopt when it is shorter than a header.
std::optional<uint16_t> ether_type(std::span<const uint8_t> frame);
// The IPv4 packet in `frame`: version 4, header length 20..60 inside the
// frame, total length at least the header and at most the frame.
std::optional<Ipv4View> parse_ipv4(std::span<const uint8_t> frame);
// TCP or UDP inside an unfragmented IPv4 packet, headers complete.
std::optional<L4View> parse_l4(std::span<const uint8_t> frame);

}  // namespace ksbox::devices::net
