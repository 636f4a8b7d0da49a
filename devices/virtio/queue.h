// A split virtqueue seen from the device side (virtio 1.2 §2.7).
//
// Everything read from the rings is guest-controlled: pop() copies each
// descriptor once, validates it, and hands the device a list of buffers that
// each lie wholly inside one guest RAM region. Malformed chains are refused
// and counted; protocol violations that cannot be answered in-band (a head the
// device cannot complete) mark the queue broken so the transport can set
// DEVICE_NEEDS_RESET. Work per pop() is bounded by the queue sizes.
//
// Not thread-safe: after activation only the device's thread uses a Queue.
// broken() and the counters may be read from any thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "devices/virtio/ring.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::virtio {

// One validated guest buffer: [addr, addr+len) lies inside one RAM region.
struct Segment {
  GuestAddress addr;
  uint32_t len = 0;
};

struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Segment> readable;  // driver → device, in chain order
  std::vector<Segment> writable;  // device → driver, all after the readable ones
  uint32_t readable_bytes = 0;
  uint32_t writable_bytes = 0;  // readable_bytes + writable_bytes fits in u32
};

enum class PopStatus : uint8_t {
  kChain,      // `chain` is valid
  kEmpty,      // nothing available (or the queue is not ready)
  kMalformed,  // chain refused; complete `chain.head` with add_used(head, 0)
  kBroken,     // queue unusable until reset: the device needs a reset
};

enum class ChainError : uint8_t {
  kNone,
  // Break the queue (no head the device could complete).
  kAvailIdxJump,    // avail idx ran more than `size` ahead
  kRingUnreadable,  // a ring access failed (cannot happen once validated)
  kHeadOutOfRange,
  kHeadInFlight,  // head offered again before it was used
  // Refuse one chain; its head is completed with length 0.
  kChainTooLong,  // NEXT loop, or more descriptors than the table holds
  kNextOutOfRange,
  kIndirectNotNegotiated,
  kIndirectNested,
  kIndirectWithNext,
  kIndirectBadLength,  // zero or not a multiple of 16
  kIndirectTooLarge,   // more entries than the queue's max size
  kIndirectOutOfRam,
  kBufferOutOfRam,  // outside RAM, across a region gap, or addr+len wraps
  kReadableAfterWritable,
  kLengthOverflow,  // total chain length exceeds u32
  kCount,
};
const char* to_string(ChainError e);

struct PopResult {
  PopStatus status = PopStatus::kEmpty;
  ChainError error = ChainError::kNone;
  DescriptorChain chain;  // chain.head valid for kChain and kMalformed
};

// Why a queue configuration was refused (QueueReady=1).
enum class QueueConfigError : uint8_t { kOk, kBadSize, kMisaligned, kOutOfRam };

class Queue {
 public:
  static constexpr uint16_t kMaxSize = 32768;

  // `max_size` is the device's limit: a power of two in [1, 32768]; throws Error otherwise.
  explicit Queue(uint16_t max_size);

  // --- Configuration, written by the driver through the transport. Refused
  // (false) while the queue is ready. The size must be a power of two (split
  // rings index with free-running u16 counters) in [1, max_size].
  bool set_size(uint16_t size);
  bool set_desc_table(GuestAddress a);
  bool set_avail_ring(GuestAddress a);
  bool set_used_ring(GuestAddress a);
  // Picks VIRTIO_RING_F_INDIRECT_DESC and VIRTIO_RING_F_EVENT_IDX out of the
  // negotiated features. Set before the device runs.
  void set_features(uint64_t negotiated);

  uint16_t max_size() const { return max_size_; }
  uint16_t size() const { return size_; }
  GuestAddress desc_table() const { return desc_; }
  GuestAddress avail_ring() const { return avail_; }
  GuestAddress used_ring() const { return used_; }

  // Alignment (desc 16, avail 2, used 4) and all three rings wholly in RAM.
  QueueConfigError validate(const GuestMemory& mem) const;
  // ready=true validates first and stays not-ready on failure.
  QueueConfigError set_ready(const GuestMemory& mem, bool ready);
  bool ready() const { return ready_; }

  // --- Data path (device thread).
  PopResult pop(const GuestMemory& mem);
  // With VIRTIO_RING_F_EVENT_IDX: once pop() finds the ring empty, ask the
  // driver to kick only when `n` more buffers wait (default 1: every one),
  // for a queue whose requests want no prompt answer (virtio-fs FORGETs),
  // which the device then also drains on occasions of its own. Capped at
  // the queue size, so a full queue always kicks. reset() restores 1.
  void set_kick_batch(uint16_t n) { kick_batch_ = std::max<uint16_t>(n, 1); }
  // Whether the driver has made buffers available that pop() has not taken:
  // one load of the avail idx, nothing written (for polling the ring).
  bool avail_pending(const GuestMemory& mem) const;
  // Publishes `head` as used with `len` bytes written. Refused (false, counted)
  // when `head` was not popped or was already used.
  bool add_used(const GuestMemory& mem, uint16_t head, uint32_t len);
  // add_used() in two steps, for a request spread over several chains (a
  // mergeable rx packet): fill_used() writes the used element but leaves the
  // used idx alone, so the driver, which may be polling the ring right now,
  // cannot see part of the request; publish_used() then exposes all filled
  // elements at once. add_used() publishes earlier filled ones too.
  bool fill_used(const GuestMemory& mem, uint16_t head, uint32_t len);
  void publish_used(const GuestMemory& mem);
  // After add_used() calls: whether the driver wants an interrupt now
  // (VRING_AVAIL_F_NO_INTERRUPT, or used_event with VIRTIO_RING_F_EVENT_IDX).
  bool should_notify(const GuestMemory& mem);

  // Back to the power-on state: not ready, size = max_size, addresses 0,
  // counters of the ring positions 0. Error counters are kept.
  void reset();

  bool broken() const { return broken_.get(); }
  uint16_t in_flight() const { return in_flight_count_; }
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }

  // Guest-caused errors, per kind and in total; add_used refusals.
  uint64_t error_count(ChainError e) const { return errors_[static_cast<size_t>(e)].get(); }
  uint64_t errors_total() const;
  uint64_t add_used_refused() const { return add_used_refused_.get(); }
  uint64_t chains_popped() const { return popped_.get(); }

 private:
  // Outcome of walking one chain from a valid head.
  ChainError walk_chain(const GuestMemory& mem, uint16_t head, DescriptorChain& out) const;
  PopResult fail(ChainError e);
  PopResult malformed(uint16_t head, ChainError e);

  const uint16_t max_size_;
  // Configuration.
  uint16_t size_;
  GuestAddress desc_, avail_, used_;
  bool ready_ = false;
  bool indirect_ = false;
  bool event_idx_ = false;
  // Ring state.
  uint16_t next_avail_ = 0;       // next avail ring slot to consume
  uint16_t avail_idx_cache_ = 0;  // last avail idx read from the guest
  uint16_t next_used_ = 0;        // value of used idx we last published
  uint16_t filled_ = 0;           // used elements written after next_used_, not yet published
  uint16_t signalled_used_ = 0;   // used idx at the last should_notify()
  uint16_t kick_batch_ = 1;
  uint16_t in_flight_count_ = 0;
  std::vector<bool> in_flight_;  // by head: popped, not yet used
  Relaxed<bool> broken_{false};
  // Metrics.
  std::array<Counter, static_cast<size_t>(ChainError::kCount)> errors_{};
  Counter add_used_refused_;
  Counter popped_;
};

}  // namespace ksbox::devices::virtio
