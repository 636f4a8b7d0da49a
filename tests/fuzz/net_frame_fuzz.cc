// libFuzzer target for virtio-net (devices/net/): the TX header checks and
// checksum completion on arbitrary packets, and the whole device driven by
// arbitrary guest memory, rings, kicks and backend frames.
//
// Input: byte 0 picks the mode (bit 0: 0 = packet, 1 = device).
//  - packet: byte 1 = features (bit 0 CSUM, bit 1 GUEST_CSUM); the rest is
//    a TX packet (virtio-net header + frame). prepare_tx_packet() may change
//    only the two checksum bytes, and a completed checksum must verify.
//  - device: byte 1 = features (bit 0 mergeable RX, bit 1 CSUM, bit 2 event
//    idx, bit 3 indirect), byte 2 = op count (at most 64), 4 bytes per op,
//    then RAM. Rings of 16 entries: RX at 0x0000, TX at 0x1000 (desc, +0x200
//    avail, +0x400 used). Ops kick queues, rewrite guest RAM, deliver frames
//    from the backend and make the backend full or writable again.
// RAM: region A [0, 0x10000), a gap, region B [0x20000, 0x30000).
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "devices/net/frame.h"
#include "devices/net/virtio_net.h"
#include "devices/virtio/queue.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_guest_memory.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::net {
namespace {

using fuzz::Input;

constexpr uint16_t kRing = 16;

const GuestMemory& memory() {
  static const GuestMemory mem({{GuestAddress(0), 0x10000}, {GuestAddress(0x20000), 0x10000}});
  return mem;
}

// --- packet mode ------------------------------------------------------------------

void fuzz_packet(Input& in) {
  const uint8_t f = in.take<uint8_t>();
  const uint64_t features = (f & 1 ? 1ull << kFeatureCsum : 0) | (f & 2 ? 1ull << kFeatureGuestCsum : 0);
  const auto rest = in.rest();
  std::vector<uint8_t> packet(rest.begin(), rest.end());
  const auto before = packet;
  const TxRefusal r = prepare_tx_packet(packet, features);
  CHECK(packet.size() == before.size());
  if (r != TxRefusal::kNone) {
    CHECK(packet == before);  // a refused packet is not touched
    return;
  }
  CHECK(packet.size() >= kNetHeaderSize + kEthHeaderSize && packet.size() <= kMaxPacketBytes);
  const NetHeader h = decode(std::span<const uint8_t, kNetHeaderSize>(packet.data(), kNetHeaderSize));
  CHECK(h.gso_type == kGsoNone);
  if (!(h.flags & kHdrNeedsCsum)) {
    CHECK(packet == before);
    return;
  }
  CHECK(features & (1ull << kFeatureCsum));
  const size_t field = kNetHeaderSize + size_t{h.csum_start} + h.csum_offset;
  CHECK(field + 2 <= packet.size());
  for (size_t i = 0; i < packet.size(); ++i)
    if (i != field && i != field + 1) CHECK(packet[i] == before[i]);
  if (h.csum_offset % 2 == 0) {
    // Whatever the field held (the pseudo-header sum) plus the range now sums to all ones.
    const uint16_t old = static_cast<uint16_t>(before[field] << 8 | before[field + 1]);
    CHECK(ones_complement_sum(std::span(packet).subspan(kNetHeaderSize + h.csum_start), old) == 0xffff);
  }
}

// --- device mode ------------------------------------------------------------------

class FuzzBackend : public NetBackend {
 public:
  void start(FrameSink& s) override { sink = &s; }
  bool can_send() override { return writable; }
  void send_frame(std::span<const uint8_t> f) override {
    CHECK(f.size() >= kEthHeaderSize && f.size() <= kMaxFrameBytes);
    ++sent;
  }
  FrameSink* sink = nullptr;
  bool writable = true;
  size_t sent = 0;
};

class NullInterrupt : public virtio::Interrupt {
 public:
  void signal_used_queue(uint16_t q) override { CHECK(q < 2); }
  void signal_config_change() override {}
  void signal_needs_reset() override {}
};

enum Op : uint8_t { kKickRx, kKickTx, kPoke, kDeliver, kFull, kWritable, kReset, kCount };

void fuzz_device(Input& in) {
  const uint8_t f = in.take<uint8_t>();
  const unsigned nops = in.take<uint8_t>() % 65;
  std::vector<std::array<uint8_t, 4>> ops(nops);
  for (auto& op : ops) op = in.take<std::array<uint8_t, 4>>();
  const GuestMemory& mem = memory();
  fuzz::load_memory(mem, in.rest());

  uint64_t features = virtio::feature_bit(VIRTIO_F_VERSION_1) | virtio::feature_bit(kFeatureGuestCsum);
  if (f & 1) features |= virtio::feature_bit(kFeatureMrgRxbuf);
  if (f & 2) features |= virtio::feature_bit(kFeatureCsum);
  if (f & 4) features |= virtio::feature_bit(VIRTIO_RING_F_EVENT_IDX);
  if (f & 8) features |= virtio::feature_bit(VIRTIO_RING_F_INDIRECT_DESC);

  auto owned = std::make_unique<FuzzBackend>();
  FuzzBackend& backend = *owned;
  VirtioNet dev({2, 0, 0, 0, 0, 1}, 1500, std::move(owned));
  std::array<virtio::Queue, 2> queues{virtio::Queue(kRing), virtio::Queue(kRing)};
  for (uint16_t i = 0; i < 2; ++i)
    if (!fuzz::configure_ring(queues[i], mem, {kRing, 0x1000u * i, 0x1000u * i + 0x200, 0x1000u * i + 0x400},
                              features))
      return;
  NullInterrupt irq;
  CHECK(dev.activate({features, std::span(queues), &mem, &irq}));

  std::vector<uint8_t> frame;
  for (const auto& op : ops) {
    const uint16_t arg = static_cast<uint16_t>(op[1] | op[2] << 8);
    switch (op[0] % kCount) {
      case kKickRx: dev.process_queue(VirtioNet::kRxQueue); break;
      case kKickTx: dev.process_queue(VirtioNet::kTxQueue); break;
      case kPoke: mem.write_obj<uint8_t>(GuestAddress(arg), op[3]); break;
      case kDeliver:
        // Up to 16 KiB + a bit, sometimes bigger than any buffer the guest posted.
        frame.assign(arg % 16500, op[3]);
        backend.sink->receive_frame(frame);
        break;
      case kFull: backend.writable = false; break;
      case kWritable:
        backend.writable = true;
        backend.sink->backend_writable();
        break;
      case kReset:
        dev.reset();
        for (auto& q : queues) q.reset();
        return;
    }
  }
  const NetStats s = dev.stats();
  CHECK(s.tx_frames == backend.sent);
}

}  // namespace
}  // namespace ksbox::devices::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ksbox::devices::net;
  return ksbox::fuzz::run_by_mode(data, size, fuzz_packet, fuzz_device);
}
