// virtio-net packets (virtio 1.2 §5.1.6): the 12-byte header in front of
// every Ethernet frame, checked and acted on for TX, written for RX.
//
// TX packets are copied out of guest memory into one host buffer before they
// are parsed, so what is checked is what is sent. A packet is refused
// (counted, dropped; the VMM carries on) when its header asks for something
// that was not negotiated or that does not fit the frame.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace ksbox::devices::net {

// Constants of virtio 1.2 §5.1 (<linux/virtio_net.h> is not valid C++: a
// field there is named `class`).
inline constexpr unsigned kFeatureCsum = 0;       // VIRTIO_NET_F_CSUM: the device completes checksums
inline constexpr unsigned kFeatureGuestCsum = 1;  // VIRTIO_NET_F_GUEST_CSUM
inline constexpr unsigned kFeatureMtu = 3;        // VIRTIO_NET_F_MTU
inline constexpr unsigned kFeatureMac = 5;        // VIRTIO_NET_F_MAC
inline constexpr unsigned kFeatureMrgRxbuf = 15;  // VIRTIO_NET_F_MRG_RXBUF
inline constexpr unsigned kFeatureStatus = 16;    // VIRTIO_NET_F_STATUS
inline constexpr uint16_t kStatusLinkUp = 1;      // VIRTIO_NET_S_LINK_UP
inline constexpr uint8_t kHdrNeedsCsum = 1;       // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr uint8_t kHdrDataValid = 2;       // VIRTIO_NET_HDR_F_DATA_VALID
inline constexpr uint8_t kGsoNone = 0;            // VIRTIO_NET_HDR_GSO_NONE

// With VIRTIO_F_VERSION_1 the header always has num_buffers: 12 bytes.
inline constexpr uint32_t kNetHeaderSize = 12;
inline constexpr uint32_t kEthHeaderSize = 14;
// slirp's largest MTU is 65521; we use an even 65520 at most.
inline constexpr uint32_t kMaxMtu = 65520;
// The largest frame a guest may send: the MTU, an Ethernet header and a VLAN tag.
inline constexpr uint32_t kMaxFrameBytes = kMaxMtu + kEthHeaderSize + 4;
inline constexpr uint32_t kMaxPacketBytes = kNetHeaderSize + kMaxFrameBytes;

struct NetHeader {
  uint8_t flags = 0;  // VIRTIO_NET_HDR_F_*
  uint8_t gso_type = kGsoNone;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  uint16_t num_buffers = 0;
  bool operator==(const NetHeader&) const = default;
};

std::array<uint8_t, kNetHeaderSize> encode(const NetHeader& h);
NetHeader decode(std::span<const uint8_t, kNetHeaderSize> wire);

// Why a TX packet was refused; counted per reason.
enum class TxRefusal : uint8_t {
  kNone,
  kMalformedChain,   // the virtqueue refused the descriptor chain
  kShortPacket,      // less than a header and an Ethernet header
  kOversizedPacket,  // frame above kMaxFrameBytes
  kGsoNotOffered,    // gso_type other than NONE (no TSO/UFO is offered)
  kCsumNotOffered,   // NEEDS_CSUM without VIRTIO_NET_F_CSUM
  kBadCsumOffsets,   // csum_start/csum_offset outside the frame
  kCount,
};
inline constexpr size_t kTxRefusalCount = static_cast<size_t>(TxRefusal::kCount);
const char* to_string(TxRefusal r);

// The one's-complement sum of `data` (RFC 1071), folded, not inverted, added to `initial`.
uint16_t ones_complement_sum(std::span<const uint8_t> data, uint32_t initial = 0);

// Checks the header of `packet` (header + frame, a host copy) against the
// negotiated features and completes a partial checksum in the frame
// (NEEDS_CSUM: the sum from csum_start to the end goes to
// csum_start + csum_offset, as the guest's stack expects of a NIC). The
// frame is packet.subspan(kNetHeaderSize) when kNone is returned.
TxRefusal prepare_tx_packet(std::span<uint8_t> packet, uint64_t features);

// The header of an RX packet carrying one complete, checksummed frame in
// `num_buffers` buffers; DATA_VALID when the guest took GUEST_CSUM (the
// frame comes from the host's stack, whose checksums are right).
NetHeader rx_header(uint64_t features, uint16_t num_buffers);

}  // namespace ksbox::devices::net
