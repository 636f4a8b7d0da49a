// libFuzzer target for virtio-blk (devices/blk/): request parsing on
// arbitrary chains, and the whole device (sync engine, a small temp image)
// on arbitrary rings.
//
// Input: byte 0 = flags (bit 0: whole device, else the parser alone; bit 1:
// read-only disk; bits 2-4: FLUSH, DISCARD, WRITE_ZEROES negotiated; bit 5:
// indirect descriptors; bit 6: event idx).
//  - parser: u8 segment count (at most 16), then per segment u16 address,
//    u16 length, u8 writable (bit 0); then the guest RAM image.
//  - device: u8 log2 queue size (mod 5: 1..16), u16 desc, avail, used
//    addresses, u8 number of kicks (mod 4, plus 1); then the guest RAM image.
// Guest RAM: region A [0x0, 0x2000), region B [0x3000, 0x4000).
//
// Checked: every buffer the parser hands out lies in guest RAM and adds up;
// a request to run is within the disk, whole sectors, in the right
// direction; the status byte is the chain's last writable byte; the device
// completes every chain it pops (nothing stays in flight with the sync
// engine) and never touches the image outside its capacity.
// Seeds: gen_blk_request_seeds.py.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "devices/blk/virtio_blk.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_guest_memory.h"

namespace ksbox::devices::blk {
namespace {

using fuzz::Input;

constexpr uint64_t kRegionA = 0x0, kRegionASize = 0x2000;
constexpr uint64_t kRegionB = 0x3000, kRegionBSize = 0x1000;
constexpr uint64_t kAddrSpan = 0x4400;
constexpr uint64_t kImageBytes = 64 * 1024;

const GuestMemory& memory() {
  static const GuestMemory mem({{GuestAddress(kRegionA), kRegionASize}, {GuestAddress(kRegionB), kRegionBSize}});
  return mem;
}

bool in_ram(const void* p, size_t n) {
  for (const auto& r : memory().regions()) {
    const auto* b = static_cast<const uint8_t*>(r.host);
    const auto* q = static_cast<const uint8_t*>(p);
    if (q >= b && q + n <= b + r.size) return true;
  }
  return false;
}

BlkLimits limits(uint8_t flags) {
  BlkLimits l;
  l.capacity_sectors = kImageBytes / kSectorSize;
  l.read_only = flags & 2;
  l.flush = flags & 4;
  l.discard = flags & 8;
  l.write_zeroes = flags & 16;
  l.max_segments = 8;
  l.max_discard_sectors = l.max_write_zeroes_sectors = 64;
  l.max_discard_seg = l.max_write_zeroes_seg = 4;
  return l;
}

void fuzz_parser(uint8_t flags, Input& in) {
  const virtio::DescriptorChain chain = fuzz::take_chain(in, memory(), kAddrSpan, 0x1100);
  fuzz::load_memory(memory(), in.rest());
  const BlkLimits l = limits(flags);
  const auto r = parse_request(chain, memory(), l);
  using Outcome = ParseResult::Outcome;
  if (r.outcome == Outcome::kNoStatus) {
    CHECK(r.error != ParseError::kNone);
    return;
  }
  CHECK(chain.writable_bytes >= 1);
  CHECK(r.request.status && in_ram(r.request.status, 1));
  CHECK(r.request.used_len >= 1 && r.request.used_len <= chain.writable_bytes);
  if (r.outcome == Outcome::kReply) {
    CHECK(r.error != ParseError::kNone);
    CHECK(r.status == VIRTIO_BLK_S_IOERR || r.status == VIRTIO_BLK_S_UNSUPP);
    return;
  }
  CHECK(r.error == ParseError::kNone);
  uint64_t bytes = 0;
  for (const auto& v : r.request.data) {
    CHECK(in_ram(v.iov_base, v.iov_len));
    // Data the device writes never covers the status byte of the same chain
    // (the guest may alias buffers it only gives to be read).
    const auto* base = static_cast<const uint8_t*>(v.iov_base);
    if (r.request.type != VIRTIO_BLK_T_OUT && chain.writable.size() == 1)
      CHECK(r.request.status < base || r.request.status >= base + v.iov_len);
    bytes += v.iov_len;
  }
  CHECK(bytes == r.request.data_bytes);
  switch (r.request.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
      CHECK(bytes % kSectorSize == 0);
      CHECK(r.request.sector <= l.capacity_sectors && bytes / kSectorSize <= l.capacity_sectors - r.request.sector);
      CHECK(r.request.type == VIRTIO_BLK_T_IN || !l.read_only);
      CHECK(r.request.data.size() <= l.max_segments);
      break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
      CHECK(!l.read_only);
      CHECK(!r.request.ranges.empty() && r.request.ranges.size() <= 4);
      for (const auto& g : r.request.ranges) CHECK(g.sector + g.sectors <= l.capacity_sectors && g.sectors <= 64);
      break;
    case VIRTIO_BLK_T_FLUSH:
      CHECK(l.flush && bytes == 0);
      break;
    case VIRTIO_BLK_T_GET_ID:
      CHECK(bytes <= VIRTIO_BLK_ID_BYTES);
      break;
    default:
      CHECK(false);
  }
}

struct Image {
  Image() {
    char t[] = "/tmp/ksbox-blk-fuzz-XXXXXX";
    const int fd = ::mkstemp(t);
    CHECK(fd >= 0);
    ::close(fd);
    path = t;
  }
  ~Image() { ::unlink(path.c_str()); }
  std::string path;
};

void fuzz_device(uint8_t flags, Input& in) {
  static Image image;
  CHECK(::truncate(image.path.c_str(), kImageBytes) == 0);
  const auto size = static_cast<uint16_t>(1u << (in.take<uint8_t>() % 5));
  fuzz::RingLayout ring{size, in.take<uint16_t>() % kAddrSpan, in.take<uint16_t>() % kAddrSpan,
                        in.take<uint16_t>() % kAddrSpan};
  const int kicks = in.take<uint8_t>() % 4 + 1;
  fuzz::load_memory(memory(), in.rest());
  VirtioBlk dev(DiskImage(image.path, flags & 2, "fuzz"), std::make_unique<io::SyncAsyncIo>(VirtioBlk::kEngineCapacity));
  uint64_t features = dev.device_features() & ~(virtio::feature_bit(VIRTIO_BLK_F_FLUSH) |
                                                virtio::feature_bit(VIRTIO_BLK_F_DISCARD) |
                                                virtio::feature_bit(VIRTIO_BLK_F_WRITE_ZEROES) |
                                                virtio::feature_bit(VIRTIO_RING_F_INDIRECT_DESC) |
                                                virtio::feature_bit(VIRTIO_RING_F_EVENT_IDX));
  if (flags & 4) features |= virtio::feature_bit(VIRTIO_BLK_F_FLUSH);
  if (flags & 8) features |= dev.device_features() & virtio::feature_bit(VIRTIO_BLK_F_DISCARD);
  if (flags & 16) features |= dev.device_features() & virtio::feature_bit(VIRTIO_BLK_F_WRITE_ZEROES);
  if (flags & 32) features |= virtio::feature_bit(VIRTIO_RING_F_INDIRECT_DESC);
  if (flags & 64) features |= virtio::feature_bit(VIRTIO_RING_F_EVENT_IDX);
  virtio::Queue q(16);
  if (!fuzz::configure_ring(q, memory(), ring, features)) return;
  fuzz::NullInterrupt irq;
  CHECK(dev.activate({features, std::span(&q, 1), &memory(), &irq}));
  for (int i = 0; i < kicks; ++i) {
    dev.process_queue(0);
    CHECK(q.in_flight() == 0 || q.broken());  // the sync engine finishes what it pops
  }
  dev.reset();
  struct stat st {};
  CHECK(::stat(image.path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == kImageBytes);
}

}  // namespace
}  // namespace ksbox::devices::blk

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ksbox::fuzz::Input in({data, size});
  const auto flags = in.take<uint8_t>();
  if (flags & 1)
    ksbox::devices::blk::fuzz_device(flags, in);
  else
    ksbox::devices::blk::fuzz_parser(flags, in);
  return 0;
}
