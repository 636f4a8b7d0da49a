// libFuzzer target for virtio-balloon (devices/balloon/): request parsing on
// arbitrary chains, and the whole device on an arbitrary ring.
//
// Input: byte 0 = flags (bit 0: whole device, else the parser alone; bits
// 1-2: what to parse, or which queue to drive (0 inflate, 1 deflate, 2 stats,
// 3 reporting); bit 3: STATS_VQ negotiated; bit 4: REPORTING negotiated;
// bit 5: indirect descriptors; bit 6: event idx).
//  - parser: u8 segment count (at most 16), then per segment u16 address,
//    u16 length, u8 writable (bit 0); then the guest RAM image.
//  - device: u8 log2 queue size (mod 5: 1..16), u16 desc, avail, used
//    addresses, u8 number of kicks (mod 4, plus 1); then the guest RAM image.
// Guest RAM: region A [0x0, 0x8000), region B [0x9000, 0xc000).
//
// Checked: a parsed request is either refused with nothing in it, or every
// range is whole pages of one RAM region and the ranges add up to the
// request; the device completes every chain it pops (only the stats buffer
// may stay with it), never fails a discard (it only discards RAM it
// validated), and refuses nothing without counting it.
// Seeds: gen_balloon_request_seeds.py.
#include <linux/virtio_balloon.h>

#include <array>
#include <cstdint>

#include "devices/balloon/virtio_balloon.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_guest_memory.h"

namespace ksbox::devices::balloon {
namespace {

using fuzz::Input;

constexpr uint64_t kRegionA = 0x0, kRegionASize = 0x8000;
constexpr uint64_t kRegionB = 0x9000, kRegionBSize = 0x3000;
constexpr uint64_t kAddrSpan = 0xc400;

const GuestMemory& memory() {
  static const GuestMemory mem({{GuestAddress(kRegionA), kRegionASize}, {GuestAddress(kRegionB), kRegionBSize}});
  return mem;
}

void check_pages(const PageRequest& r, uint64_t expect_bytes) {
  if (r.error != RequestError::kNone) {
    CHECK(r.ranges.empty() && r.pages == 0);
    return;
  }
  uint64_t bytes = 0;
  for (const auto& g : r.ranges) {
    CHECK(g.len > 0 && g.len % kPageSize == 0 && g.addr.value() % kPageSize == 0);
    CHECK(memory().slice(g.addr, g.len).has_value());
    bytes += g.len;
  }
  CHECK(bytes == r.pages * kPageSize);
  CHECK(bytes == expect_bytes);
}

void fuzz_parser(uint8_t flags, Input& in) {
  const virtio::DescriptorChain chain = fuzz::take_chain(in, memory(), kAddrSpan, 0x5000);
  fuzz::load_memory(memory(), in.rest());
  switch ((flags >> 1) & 3) {
    case 0:
    case 1: {
      const auto r = parse_pfn_list(chain, memory());
      if (r.error == RequestError::kNone) CHECK(r.pages * sizeof(uint32_t) == chain.readable_bytes);
      check_pages(r, r.pages * kPageSize);
      break;
    }
    case 2: {
      const auto r = parse_stats(chain, memory());
      if (r.error == RequestError::kNone)
        CHECK(r.stats.size() * kStatBytes == chain.readable_bytes && r.stats.size() <= kMaxStatsPerRequest);
      else
        CHECK(r.stats.empty());
      break;
    }
    default:
      check_pages(parse_report(chain, memory()), chain.writable_bytes);
      break;
  }
}

void fuzz_device(uint8_t flags, Input& in) {
  const auto size = static_cast<uint16_t>(1u << (in.take<uint8_t>() % 5));
  fuzz::RingLayout ring{size, in.take<uint16_t>() % kAddrSpan, in.take<uint16_t>() % kAddrSpan,
                        in.take<uint16_t>() % kAddrSpan};
  const int kicks = in.take<uint8_t>() % 4 + 1;
  fuzz::load_memory(memory(), in.rest());
  uint64_t features = virtio::feature_bit(VIRTIO_F_VERSION_1);
  if (flags & 8) features |= virtio::feature_bit(VIRTIO_BALLOON_F_STATS_VQ);
  if (flags & 16) features |= virtio::feature_bit(VIRTIO_BALLOON_F_REPORTING);
  if (flags & 32) features |= virtio::feature_bit(VIRTIO_RING_F_INDIRECT_DESC);
  if (flags & 64) features |= virtio::feature_bit(VIRTIO_RING_F_EVENT_IDX);
  VirtioBalloon dev;
  std::array<virtio::Queue, VirtioBalloon::kQueues> queues{virtio::Queue(16), virtio::Queue(16), virtio::Queue(16),
                                                           virtio::Queue(16)};
  fuzz::NullInterrupt irq;
  // Only the driven queue is set up; the others stay not ready, as a driver may leave them.
  const auto role = static_cast<VirtioBalloon::Role>((flags >> 1) & 3);
  CHECK(dev.activate({features, queues, &memory(), &irq}));
  const auto index = dev.queue_index(role);
  if (!index) return;  // the role was not negotiated
  auto& q = queues[*index];
  if (!fuzz::configure_ring(q, memory(), ring, features)) return;
  for (int i = 0; i < kicks; ++i) {
    dev.process_queue(*index);
    const uint16_t held = role == VirtioBalloon::Role::kStats ? 1 : 0;
    CHECK(q.in_flight() <= held || q.broken());
    if (role == VirtioBalloon::Role::kStats) dev.request_stats();
  }
  const auto c = dev.counters();
  CHECK(c.host_errors == 0);
  CHECK(c.discarded_bytes == (c.inflated_pages + c.reported_pages) * kPageSize);
  dev.set_target_pages(flags);
  dev.reset();
  CHECK(!dev.request_stats());
}

}  // namespace
}  // namespace ksbox::devices::balloon

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ksbox::fuzz::Input in({data, size});
  const auto flags = in.take<uint8_t>();
  if (flags & 1)
    ksbox::devices::balloon::fuzz_device(flags, in);
  else
    ksbox::devices::balloon::fuzz_parser(flags, in);
  return 0;
}
