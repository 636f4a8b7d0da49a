// Split-virtqueue wire layout (virtio 1.2 §2.7). The uapi headers give the
// flag and feature constants; the structs are our own because the uapi ones
// use flexible arrays (not standard C++) and host-endian field types.
#pragma once

#include <linux/virtio_config.h>
// The legacy part of the uapi header (vring_init) is C, not C++; we need only
// its constants.
#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY
#endif
#include <linux/virtio_ring.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ksbox::devices::virtio {

// virtio 1.x rings are little-endian; x86-64 (the only target) is too, so the
// structs below are read with plain copies. A big-endian port must swap here.
static_assert(std::endian::native == std::endian::little, "virtio rings are little-endian");

struct [[gnu::packed]] Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Desc) == 16);
static_assert(offsetof(Desc, addr) == 0 && offsetof(Desc, len) == 8);
static_assert(offsetof(Desc, flags) == 12 && offsetof(Desc, next) == 14);

struct [[gnu::packed]] UsedElem {
  uint32_t id;  // head index of the completed chain (u32 on the wire)
  uint32_t len;  // bytes the device wrote into the chain's writable buffers
};
static_assert(sizeof(UsedElem) == 8);
static_assert(offsetof(UsedElem, id) == 0 && offsetof(UsedElem, len) == 4);

// Field offsets inside the rings, so code reads single fields and never a
// whole ring. avail: flags, idx, ring[size], used_event.
//             used:  flags, idx, ring[size] (8 bytes each), avail_event.
inline constexpr uint64_t kAvailFlagsOff = 0;
inline constexpr uint64_t kAvailIdxOff = 2;
inline constexpr uint64_t kAvailRingOff = 4;
inline constexpr uint64_t kUsedFlagsOff = 0;
inline constexpr uint64_t kUsedIdxOff = 2;
inline constexpr uint64_t kUsedRingOff = 4;

constexpr uint64_t desc_table_bytes(uint16_t size) { return uint64_t{16} * size; }
// Both ring sizes include the trailing event-idx u16, used or not.
constexpr uint64_t avail_ring_bytes(uint16_t size) { return 6 + uint64_t{2} * size; }
constexpr uint64_t used_ring_bytes(uint16_t size) { return 6 + uint64_t{8} * size; }

inline constexpr uint64_t kDescAlign = VRING_DESC_ALIGN_SIZE;    // 16
inline constexpr uint64_t kAvailAlign = VRING_AVAIL_ALIGN_SIZE;  // 2
inline constexpr uint64_t kUsedAlign = VRING_USED_ALIGN_SIZE;    // 4

inline constexpr uint64_t feature_bit(unsigned bit) { return uint64_t{1} << bit; }

// The spec's vring_need_event(): true when `new_idx` has passed `event_idx`
// since `old_idx`, all in free-running u16 arithmetic.
constexpr bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// A relaxed atomic value that metrics threads may read while the owning thread
// updates it; copying snapshots it, so the objects holding it stay movable.
template <typename T>
class Relaxed {
 public:
  constexpr Relaxed() = default;
  constexpr Relaxed(T v) : v_(v) {}  // NOLINT: implicit on purpose
  Relaxed(const Relaxed& o) : v_(o.get()) {}
  Relaxed& operator=(const Relaxed& o) {
    set(o.get());
    return *this;
  }
  T get() const { return v_.load(std::memory_order_relaxed); }
  void set(T v) { v_.store(v, std::memory_order_relaxed); }
  void inc()
    requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
  {
    v_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::atomic<T> v_{};
};
using Counter = Relaxed<uint64_t>;

}  // namespace ksbox::devices::virtio
