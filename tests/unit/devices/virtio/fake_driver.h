// A guest driver's side of a split virtqueue, for tests: writes descriptors
// and avail entries into a real GuestMemory and reads the used ring back.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "devices/virtio/device.h"
#include "devices/virtio/ring.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::virtio::testing {

// Two RAM regions with a gap: [0, 64 KiB) and [128 KiB, 192 KiB).
inline constexpr uint64_t kLowEnd = 0x10000;
inline constexpr uint64_t kHighStart = 0x20000, kHighEnd = 0x30000;
inline GuestMemory make_two_region_memory() {
  return GuestMemory({{GuestAddress(0), kLowEnd}, {GuestAddress(kHighStart), kHighEnd - kHighStart}});
}

// Default ring placement used by the tests.
inline constexpr uint64_t kDescAddr = 0x1000, kAvailAddr = 0x2000, kUsedAddr = 0x3000;

class FakeDriver {
 public:
  FakeDriver(const GuestMemory& mem, uint16_t size, uint64_t desc = kDescAddr, uint64_t avail = kAvailAddr,
             uint64_t used = kUsedAddr)
      : mem_(mem), size_(size), desc_(desc), avail_(avail), used_(used) {}

  // Entry `i` of any descriptor table (the queue's own, or an indirect one).
  void write_desc_at(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    ASSERT_TRUE(mem_.write_obj(GuestAddress(table + 16ull * i), Desc{addr, len, flags, next}));
  }
  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0) {
    write_desc_at(desc_, i, addr, len, flags, next);
  }

  // Makes `head` available: ring[idx % size] = head, then idx + 1.
  void publish(uint16_t head) {
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_ + 4 + 2ull * (avail_idx_ % size_)), head));
    set_avail_idx(static_cast<uint16_t>(avail_idx_ + 1));
  }
  void set_avail_idx(uint16_t idx) {
    avail_idx_ = idx;
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_ + 2), idx));
  }
  void set_avail_flags(uint16_t f) { ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_), f)); }
  void set_used_event(uint16_t v) {
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_ + 4 + 2ull * size_), v));
  }

  uint16_t used_idx() const { return read16(used_ + 2); }
  uint16_t avail_event() const { return read16(used_ + 4 + 8ull * size_); }
  UsedElem used_elem(uint16_t n) const {  // the n-th completion, modulo size
    return mem_.read_obj<UsedElem>(GuestAddress(used_ + 4 + 8ull * (n % size_))).value_or(UsedElem{~0u, ~0u});
  }

 private:
  uint16_t read16(uint64_t a) const { return mem_.read_obj<uint16_t>(GuestAddress(a)).value_or(0xdead); }

  const GuestMemory& mem_;
  uint16_t size_;
  uint64_t desc_, avail_, used_;
  uint16_t avail_idx_ = 0;
};

// Counts what a device asked its transport for.
class CountingInterrupt : public Interrupt {
 public:
  void signal_used_queue(uint16_t) override { ++used; }
  void signal_config_change() override { ++config; }
  void signal_needs_reset() override { ++needs_reset; }
  int used = 0, needs_reset = 0, config = 0;
};

}  // namespace ksbox::devices::virtio::testing
