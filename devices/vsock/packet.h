// virtio-vsock packets (virtio 1.2 §5.10.6): the 44-byte header, validation
// of the guest's TX chains, and writing RX packets into the guest's buffers.
//
// Everything in a TX chain is guest-controlled. parse_tx() copies the header
// out once, checks every field the device relies on, and hands back the
// payload as guest segments (checked to lie in RAM by the queue, re-sliced
// on every access). The header and payload may be split across the chain's
// segments in any way: Linux 6.1 uses one descriptor for the header and one
// for the payload, later kernels a single buffer.
#pragma once

#include <sys/uio.h>

#include <linux/virtio_vsock.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "devices/virtio/queue.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::vsock {

inline constexpr uint64_t kHostCid = 2;         // VMADDR_CID_HOST: the device's own address
inline constexpr uint32_t kHeaderSize = 44;     // sizeof(struct virtio_vsock_hdr)
inline constexpr uint32_t kMaxPayload = 65536;  // Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE
static_assert(sizeof(virtio_vsock_hdr) == kHeaderSize);

// struct virtio_vsock_hdr with host-endian fields.
struct Header {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;  // payload bytes (RW only)
  uint16_t type = VIRTIO_VSOCK_TYPE_STREAM;
  uint16_t op = VIRTIO_VSOCK_OP_INVALID;
  uint32_t flags = 0;      // SHUTDOWN: VIRTIO_VSOCK_SHUTDOWN_RCV / _SEND
  uint32_t buf_alloc = 0;  // sender's receive buffer size
  uint32_t fwd_cnt = 0;    // bytes the sender has consumed from its receive buffer
  bool operator==(const Header&) const = default;
};

std::array<uint8_t, kHeaderSize> encode(const Header& h);
Header decode(std::span<const uint8_t, kHeaderSize> wire);

// Why the device refused something the guest sent; counted per reason.
enum class Refusal : uint8_t {
  kNone,
  // A chain or packet dropped as malformed (parse_tx and the queues).
  kMalformedChain,     // the virtqueue refused the descriptor chain
  kShortHeader,        // fewer than 44 readable bytes
  kOversizedPayload,   // hdr.len above 64 KiB
  kBadLength,          // hdr.len above the readable bytes after the header
  kBadType,            // not VIRTIO_VSOCK_TYPE_STREAM (SEQPACKET is not offered)
  kBadSrcCid,          // not the guest's CID
  kBadDstCid,          // not the host (CID 2)
  kUnknownOp,          // op 0 or above CREDIT_REQUEST
  kRxBufferTooSmall,   // an RX chain without room for a header
  // A well-formed packet the connection state refuses (answered with RST).
  kUnknownConnection,  // no such connection
  kUnexpectedOp,       // op not valid in the connection's state
  kCreditOverrun,      // more bytes than the credit we advertised
  kConnectionLimit,    // REQUEST beyond the connection limit
  kDuplicateRequest,   // REQUEST for a live (host port, guest port) pair
  kCount,
};
inline constexpr size_t kRefusalCount = static_cast<size_t>(Refusal::kCount);
const char* to_string(Refusal r);

// A validated guest → host packet.
struct TxPacket {
  Header hdr;
  // RW only: exactly hdr.len bytes of guest RAM, in order. Empty otherwise.
  std::vector<virtio::Segment> payload;
};

struct ParseResult {
  Refusal refusal = Refusal::kNone;  // kNone: `packet` is valid
  TxPacket packet;
};

// Validates a TX chain from the guest with CID `guest_cid` (its readable
// segments; writable ones are ignored).
ParseResult parse_tx(const GuestMemory& mem, const virtio::DescriptorChain& chain, uint64_t guest_cid);

// --- RX: host → guest. An RX chain carries the header in its first 44
// writable bytes and the payload right after, across any segment split.

// Whether the chain can carry a packet at all.
inline bool rx_chain_usable(const virtio::DescriptorChain& c) { return c.writable_bytes >= kHeaderSize; }
// Payload bytes the chain can carry.
inline uint32_t rx_payload_capacity(const virtio::DescriptorChain& c) {
  return c.writable_bytes >= kHeaderSize ? c.writable_bytes - kHeaderSize : 0;
}
// Fills `out` with host views of the chain's payload area, at most `max`
// bytes; returns the bytes covered. Stops early when `out` is full.
size_t rx_payload_iovecs(const GuestMemory& mem, const virtio::DescriptorChain& c, uint32_t max,
                         std::vector<iovec>& out);
// Copies `data` into the payload area (at most the capacity); returns bytes copied.
uint32_t write_rx_payload(const GuestMemory& mem, const virtio::DescriptorChain& c,
                          std::span<const uint8_t> data);
// Writes the header; false if the chain has no room for it.
bool write_rx_header(const GuestMemory& mem, const virtio::DescriptorChain& c, const Header& h);

}  // namespace ksbox::devices::vsock
