#include "devices/vsock/packet.h"

#include "devices/virtio/segments.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ksbox::devices::vsock {
namespace {

static_assert(std::endian::native == std::endian::little, "virtio-vsock headers are little-endian");

// Wire layout of the header, copied with memcpy (little-endian host).
struct [[gnu::packed]] WireHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
static_assert(sizeof(WireHeader) == kHeaderSize);

// More segments than this in one RX chain are left unused (Linux uses one or two).
constexpr size_t kMaxIovecs = 64;

bool known_op(uint16_t op) { return op >= VIRTIO_VSOCK_OP_REQUEST && op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST; }

}  // namespace

std::array<uint8_t, kHeaderSize> encode(const Header& h) {
  const WireHeader w{h.src_cid, h.dst_cid, h.src_port, h.dst_port, h.len,
                     h.type,    h.op,      h.flags,    h.buf_alloc, h.fwd_cnt};
  std::array<uint8_t, kHeaderSize> out;
  std::memcpy(out.data(), &w, kHeaderSize);
  return out;
}

Header decode(std::span<const uint8_t, kHeaderSize> wire) {
  WireHeader w;
  std::memcpy(&w, wire.data(), kHeaderSize);
  return {w.src_cid, w.dst_cid, w.src_port, w.dst_port, w.len, w.type, w.op, w.flags, w.buf_alloc, w.fwd_cnt};
}

const char* to_string(Refusal r) {
  switch (r) {
    case Refusal::kNone: return "none";
    case Refusal::kMalformedChain: return "malformed descriptor chain";
    case Refusal::kShortHeader: return "chain shorter than the header";
    case Refusal::kOversizedPayload: return "payload above 64 KiB";
    case Refusal::kBadLength: return "len beyond the chain's bytes";
    case Refusal::kBadType: return "socket type not STREAM";
    case Refusal::kBadSrcCid: return "source CID is not the guest's";
    case Refusal::kBadDstCid: return "destination CID is not the host";
    case Refusal::kUnknownOp: return "unknown op";
    case Refusal::kRxBufferTooSmall: return "RX buffer smaller than a header";
    case Refusal::kUnknownConnection: return "packet for no connection";
    case Refusal::kUnexpectedOp: return "op not valid in the connection's state";
    case Refusal::kCreditOverrun: return "guest exceeded its credit";
    case Refusal::kConnectionLimit: return "connection limit reached";
    case Refusal::kDuplicateRequest: return "REQUEST for a live connection";
    case Refusal::kCount: break;
  }
  return "unknown";
}

ParseResult parse_tx(const GuestMemory& mem, const virtio::DescriptorChain& chain, uint64_t guest_cid) {
  ParseResult r;
  if (chain.readable_bytes < kHeaderSize) {
    r.refusal = Refusal::kShortHeader;
    return r;
  }
  std::array<uint8_t, kHeaderSize> wire;
  if (!virtio::read_segments(mem, chain.readable, 0, wire)) {
    r.refusal = Refusal::kMalformedChain;
    return r;
  }
  const Header h = decode(wire);
  if (h.len > kMaxPayload) {
    r.refusal = Refusal::kOversizedPayload;
  } else if (h.len > chain.readable_bytes - kHeaderSize) {
    r.refusal = Refusal::kBadLength;
  } else if (h.type != VIRTIO_VSOCK_TYPE_STREAM) {
    r.refusal = Refusal::kBadType;
  } else if (h.src_cid != guest_cid) {
    r.refusal = Refusal::kBadSrcCid;
  } else if (h.dst_cid != kHostCid) {
    r.refusal = Refusal::kBadDstCid;
  } else if (!known_op(h.op)) {
    r.refusal = Refusal::kUnknownOp;
  }
  if (r.refusal != Refusal::kNone) return r;

  r.packet.hdr = h;
  if (h.op != VIRTIO_VSOCK_OP_RW || h.len == 0) return r;  // other ops carry no payload we use
  // The payload's segments: the readable bytes from offset 44, h.len long.
  uint64_t skip = kHeaderSize, left = h.len;
  for (const auto& s : chain.readable) {
    if (left == 0) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(s.len - skip, left));
    r.packet.payload.push_back({GuestAddress(s.addr.value() + skip), n});
    left -= n;
    skip = 0;
  }
  return r;  // left == 0: h.len <= readable_bytes - 44 was checked
}

size_t rx_payload_iovecs(const GuestMemory& mem, const virtio::DescriptorChain& c, uint32_t max,
                         std::vector<iovec>& out) {
  out.clear();
  const uint64_t len = std::min(max, rx_payload_capacity(c));
  size_t covered = 0;
  virtio::for_each_range(mem, c.writable, kHeaderSize, len, [&](std::span<uint8_t> s) {
    if (!s.empty()) out.push_back({s.data(), s.size()});
    covered += s.size();
    return out.size() < kMaxIovecs;
  });
  return covered;
}

uint32_t write_rx_payload(const GuestMemory& mem, const virtio::DescriptorChain& c,
                          std::span<const uint8_t> data) {
  const uint32_t len = static_cast<uint32_t>(std::min<size_t>(data.size(), rx_payload_capacity(c)));
  uint32_t done = 0;
  virtio::for_each_range(mem, c.writable, kHeaderSize, len, [&](std::span<uint8_t> s) {
    std::memcpy(s.data(), data.data() + done, s.size());
    done += static_cast<uint32_t>(s.size());
    return true;
  });
  return done;
}

bool write_rx_header(const GuestMemory& mem, const virtio::DescriptorChain& c, const Header& h) {
  if (!rx_chain_usable(c)) return false;
  return virtio::write_segments(mem, c.writable, 0, encode(h));
}

}  // namespace ksbox::devices::vsock
