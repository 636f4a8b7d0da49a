// Frames the egress filter writes to the guest itself, as answers to frames
// the guest sent: a DNS refusal (NXDOMAIN) for a name off the allowlist, a
// TCP reset for a connection the rules deny, and the upstream resolver's
// answer re-addressed from the VMM's DNS address. Denials are answered so
// the guest's tools fail at once instead of retrying into a timeout.
//
// Every frame is built from FlowEnds taken out of a frame that parse_l4()
// accepted, with valid IPv4, UDP and TCP checksums.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "devices/net/dns_message.h"
#include "devices/net/packet_view.h"

namespace ksbox::devices::net {

// The two ends of a guest flow: the guest, and the peer it addressed.
struct FlowEnds {
  std::array<uint8_t, 6> guest_mac{}, peer_mac{};  // source and destination of the guest's frame
  uint32_t guest_ip = 0, peer_ip = 0;              // host byte order
  uint16_t guest_port = 0, peer_port = 0;
};

// The ends of `frame` (from the guest), whose parse_l4() is `l4`.
FlowEnds flow_ends(std::span<const uint8_t> frame, const L4View& l4);

// A UDP datagram from the peer to the guest carrying `payload`.
std::vector<uint8_t> udp_to_guest(const FlowEnds& ends, std::span<const uint8_t> payload);

// RST|ACK from the peer, acknowledging the guest's SYN `syn` (sequence
// number + 1 + its payload), as a closed port answers.
std::vector<uint8_t> tcp_reset_to_guest(const FlowEnds& ends, const L4View& syn);

// The DNS answer "no such name" (rcode 3) to `query` (a message parse_dns()
// returned `q` for, not a response): its id, RD flag and question, no records.
std::vector<uint8_t> dns_nxdomain(std::span<const uint8_t> query, const DnsMessage& q);

}  // namespace ksbox::devices::net
