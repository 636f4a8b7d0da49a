// Pieces shared by the fuzz targets that drive virtio devices: an input
// reader, guest RAM loaded from the input, and a split ring set up the way a
// driver would.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "devices/virtio/device.h"
#include "devices/virtio/queue.h"
#include "tests/fuzz/fuzz_check.h"
#include "vmm/guest_memory.h"

namespace ksbox::fuzz {

// Sequential little-endian reader; reads past the end yield zeros.
class Input {
 public:
  explicit Input(std::span<const uint8_t> d) : d_(d) {}
  template <typename T>
  T take() {
    T v{};
    const size_t n = std::min(sizeof(T), d_.size() - pos_);
    std::memcpy(&v, d_.data() + pos_, n);
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> rest() const { return d_.subspan(pos_); }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
};

// Runs `even(in)` or `odd(in)` by bit 0 of the input's first byte (the
// targets' two modes), with `in` positioned after that byte.
template <typename Even, typename Odd>
int run_by_mode(const uint8_t* data, size_t size, Even&& even, Odd&& odd) {
  Input in({data, size});
  if (in.take<uint8_t>() & 1) {
    odd(in);
  } else {
    even(in);
  }
  return 0;
}

// Zeroes every region of `mem` and fills them, in order, from `image` (as
// far as it goes), so that each input starts from the same RAM.
inline void load_memory(const GuestMemory& mem, std::span<const uint8_t> image) {
  for (const GuestRegion& r : mem.regions()) {
    std::memset(r.host, 0, r.size);
    const size_t n = static_cast<size_t>(std::min<uint64_t>(image.size(), r.size));
    if (n) std::memcpy(r.host, image.data(), n);
    image = image.subspan(n);
  }
}

// A descriptor chain as pop() could hand it out, read from the input: u8
// segment count (at most 16), then per segment u16 address (mod
// `addr_span`), u16 length (mod `len_span`), u8 writable (bit 0). Segments
// outside RAM, and readable ones after a writable one, are dropped.
inline devices::virtio::DescriptorChain take_chain(Input& in, const GuestMemory& mem, uint64_t addr_span,
                                                   uint32_t len_span) {
  devices::virtio::DescriptorChain chain;
  const size_t n = in.take<uint8_t>() % 17;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t addr = in.take<uint16_t>() % addr_span;
    const uint32_t len = in.take<uint16_t>() % len_span;
    const bool w = in.take<uint8_t>() & 1;
    if (!mem.slice(GuestAddress(addr), len)) continue;
    if (!w && !chain.writable.empty()) continue;
    (w ? chain.writable : chain.readable).push_back({GuestAddress(addr), len});
    (w ? chain.writable_bytes : chain.readable_bytes) += len;
  }
  return chain;
}

// An interrupt line nobody listens to.
class NullInterrupt : public devices::virtio::Interrupt {
 public:
  void signal_used_queue(uint16_t) override {}
  void signal_config_change() override {}
  void signal_needs_reset() override {}
};

// Where a split ring's parts sit in guest RAM (the input may choose).
struct RingLayout {
  uint16_t size;
  uint64_t desc, avail, used;
};

// Resets `q` and programs it like a driver: features, size, addresses, then
// QueueReady. False when the queue refuses the layout (it then stays not ready).
inline bool configure_ring(devices::virtio::Queue& q, const GuestMemory& mem, const RingLayout& ring,
                           uint64_t features) {
  q.reset();
  q.set_features(features);
  CHECK(q.set_size(ring.size));
  q.set_desc_table(GuestAddress(ring.desc));
  q.set_avail_ring(GuestAddress(ring.avail));
  q.set_used_ring(GuestAddress(ring.used));
  return q.set_ready(mem, true) == devices::virtio::QueueConfigError::kOk;
}

}  // namespace ksbox::fuzz
