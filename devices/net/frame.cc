#include "devices/net/frame.h"

#include <bit>
#include <cstring>

namespace ksbox::devices::net {
namespace {

static_assert(std::endian::native == std::endian::little, "virtio-net headers are little-endian");

struct [[gnu::packed]] WireHeader {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
static_assert(sizeof(WireHeader) == kNetHeaderSize);

bool has(uint64_t features, unsigned bit) { return (features >> bit) & 1; }

}  // namespace

std::array<uint8_t, kNetHeaderSize> encode(const NetHeader& h) {
  const WireHeader w{h.flags, h.gso_type, h.hdr_len, h.gso_size, h.csum_start, h.csum_offset, h.num_buffers};
  std::array<uint8_t, kNetHeaderSize> out;
  std::memcpy(out.data(), &w, kNetHeaderSize);
  return out;
}

NetHeader decode(std::span<const uint8_t, kNetHeaderSize> wire) {
  WireHeader w;
  std::memcpy(&w, wire.data(), kNetHeaderSize);
  return {w.flags, w.gso_type, w.hdr_len, w.gso_size, w.csum_start, w.csum_offset, w.num_buffers};
}

const char* to_string(TxRefusal r) {
  switch (r) {
    case TxRefusal::kNone: return "none";
    case TxRefusal::kMalformedChain: return "malformed descriptor chain";
    case TxRefusal::kShortPacket: return "packet shorter than the headers";
    case TxRefusal::kOversizedPacket: return "frame above the maximum size";
    case TxRefusal::kGsoNotOffered: return "segmentation offload not offered";
    case TxRefusal::kCsumNotOffered: return "checksum offload not negotiated";
    case TxRefusal::kBadCsumOffsets: return "checksum offsets outside the frame";
    case TxRefusal::kCount: break;
  }
  return "unknown";
}

uint16_t ones_complement_sum(std::span<const uint8_t> data, uint32_t initial) {
  uint64_t sum = initial;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];  // network order
  if (i < data.size()) sum += uint32_t{data[i]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

TxRefusal prepare_tx_packet(std::span<uint8_t> packet, uint64_t features) {
  if (packet.size() < kNetHeaderSize + kEthHeaderSize) return TxRefusal::kShortPacket;
  if (packet.size() > kMaxPacketBytes) return TxRefusal::kOversizedPacket;
  const NetHeader h = decode(packet.first<kNetHeaderSize>());
  if (h.gso_type != kGsoNone) return TxRefusal::kGsoNotOffered;
  if (!(h.flags & kHdrNeedsCsum)) return TxRefusal::kNone;  // other flags mean nothing on TX
  if (!has(features, kFeatureCsum)) return TxRefusal::kCsumNotOffered;

  const std::span<uint8_t> frame = packet.subspan(kNetHeaderSize);
  const size_t start = h.csum_start, field = size_t{h.csum_start} + h.csum_offset;
  if (start >= frame.size() || field + 2 > frame.size()) return TxRefusal::kBadCsumOffsets;
  // The field holds the pseudo-header sum the guest's stack put there; it
  // is part of the summed range.
  const uint16_t sum = ones_complement_sum(frame.subspan(start));
  const uint16_t csum = static_cast<uint16_t>(~sum);
  frame[field] = static_cast<uint8_t>(csum >> 8);
  frame[field + 1] = static_cast<uint8_t>(csum);
  return TxRefusal::kNone;
}

NetHeader rx_header(uint64_t features, uint16_t num_buffers) {
  NetHeader h;
  if (has(features, kFeatureGuestCsum)) h.flags = kHdrDataValid;
  h.num_buffers = num_buffers;
  return h;
}

}  // namespace ksbox::devices::net
