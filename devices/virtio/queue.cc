#include "devices/virtio/queue.h"

#include <atomic>
#include <bit>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::devices::virtio {
namespace {

constexpr uint32_t kDescSize = sizeof(Desc);

bool valid_size(uint16_t size, uint16_t max) { return size != 0 && size <= max && std::has_single_bit(size); }

}  // namespace

const char* to_string(ChainError e) {
  switch (e) {
    case ChainError::kNone: return "none";
    case ChainError::kAvailIdxJump: return "avail idx jumped more than the queue size";
    case ChainError::kRingUnreadable: return "ring not readable";
    case ChainError::kHeadOutOfRange: return "head index out of range";
    case ChainError::kHeadInFlight: return "head already in flight";
    case ChainError::kChainTooLong: return "descriptor chain too long (loop)";
    case ChainError::kNextOutOfRange: return "next index out of range";
    case ChainError::kIndirectNotNegotiated: return "indirect descriptor without the feature";
    case ChainError::kIndirectNested: return "nested indirect descriptor";
    case ChainError::kIndirectWithNext: return "indirect descriptor with NEXT";
    case ChainError::kIndirectBadLength: return "indirect table length not a nonzero multiple of 16";
    case ChainError::kIndirectTooLarge: return "indirect table too large";
    case ChainError::kIndirectOutOfRam: return "indirect table outside guest RAM";
    case ChainError::kBufferOutOfRam: return "buffer outside guest RAM";
    case ChainError::kReadableAfterWritable: return "readable descriptor after a writable one";
    case ChainError::kLengthOverflow: return "chain length overflows 32 bits";
    case ChainError::kCount: break;
  }
  return "unknown";
}

Queue::Queue(uint16_t max_size) : max_size_(max_size), size_(max_size) {
  if (!valid_size(max_size, kMaxSize))
    throw Error(fmt::format("virtqueue max size {} is not a power of two in [1, {}]", max_size, kMaxSize));
}

bool Queue::set_size(uint16_t size) {
  if (ready_) return false;
  // An invalid size is remembered as 0 so that QueueReady=1 fails: silently
  // keeping the old size would disagree with the driver's ring layout.
  size_ = valid_size(size, max_size_) ? size : 0;
  return size_ != 0;
}

bool Queue::set_desc_table(GuestAddress a) {
  if (ready_) return false;
  desc_ = a;
  return true;
}

bool Queue::set_avail_ring(GuestAddress a) {
  if (ready_) return false;
  avail_ = a;
  return true;
}

bool Queue::set_used_ring(GuestAddress a) {
  if (ready_) return false;
  used_ = a;
  return true;
}

void Queue::set_features(uint64_t negotiated) {
  indirect_ = negotiated & feature_bit(VIRTIO_RING_F_INDIRECT_DESC);
  event_idx_ = negotiated & feature_bit(VIRTIO_RING_F_EVENT_IDX);
}

QueueConfigError Queue::validate(const GuestMemory& mem) const {
  if (!valid_size(size_, max_size_)) return QueueConfigError::kBadSize;
  if (desc_.value() % kDescAlign || avail_.value() % kAvailAlign || used_.value() % kUsedAlign)
    return QueueConfigError::kMisaligned;
  if (!mem.slice(desc_, desc_table_bytes(size_)) || !mem.slice(avail_, avail_ring_bytes(size_)) ||
      !mem.slice(used_, used_ring_bytes(size_)))
    return QueueConfigError::kOutOfRam;
  return QueueConfigError::kOk;
}

QueueConfigError Queue::set_ready(const GuestMemory& mem, bool ready) {
  if (!ready) {
    ready_ = false;
    return QueueConfigError::kOk;
  }
  if (ready_) return QueueConfigError::kOk;
  const auto err = validate(mem);
  if (err != QueueConfigError::kOk) return err;
  next_avail_ = avail_idx_cache_ = next_used_ = signalled_used_ = filled_ = 0;
  in_flight_.assign(size_, false);
  in_flight_count_ = 0;
  broken_.set(false);
  ready_ = true;
  return QueueConfigError::kOk;
}

void Queue::reset() {
  size_ = max_size_;
  desc_ = avail_ = used_ = GuestAddress(0);
  ready_ = indirect_ = event_idx_ = false;
  next_avail_ = avail_idx_cache_ = next_used_ = signalled_used_ = filled_ = 0;
  kick_batch_ = 1;
  in_flight_.clear();
  in_flight_count_ = 0;
  broken_.set(false);
}

uint64_t Queue::errors_total() const {
  uint64_t n = 0;
  for (const auto& c : errors_) n += c.get();
  return n;
}

PopResult Queue::fail(ChainError e) {
  errors_[static_cast<size_t>(e)].inc();
  broken_.set(true);
  return {PopStatus::kBroken, e, {}};
}

PopResult Queue::malformed(uint16_t head, ChainError e) {
  errors_[static_cast<size_t>(e)].inc();
  PopResult r{PopStatus::kMalformed, e, {}};
  r.chain.head = head;
  return r;
}

PopResult Queue::pop(const GuestMemory& mem) {
  if (broken_.get()) return {PopStatus::kBroken, ChainError::kNone, {}};
  if (!ready_) return {};
  // Ring addresses below cannot overflow or leave RAM: validate() checked
  // the whole rings, and slots are reduced modulo size_.
  if (next_avail_ == avail_idx_cache_) {
    if (event_idx_) {
      // Ask for a kick when the driver goes kick_batch_ past what we
      // consumed; the full fence orders this store before the idx load (no
      // lost wakeups).
      const GuestAddress avail_event(used_.value() + kUsedRingOff + 8 * uint64_t{size_});
      const auto kick_at = static_cast<uint16_t>(next_avail_ + std::min(kick_batch_, size_) - 1);
      if (!mem.write_obj<uint16_t>(avail_event, kick_at)) return fail(ChainError::kRingUnreadable);
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    const auto idx = mem.read_obj<uint16_t>(GuestAddress(avail_.value() + kAvailIdxOff));
    if (!idx) return fail(ChainError::kRingUnreadable);
    // Ring entries and descriptors are read after the idx that published them.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (static_cast<uint16_t>(*idx - next_avail_) > size_) return fail(ChainError::kAvailIdxJump);
    avail_idx_cache_ = *idx;
    if (next_avail_ == avail_idx_cache_) return {};
  }

  const uint64_t slot = next_avail_ & (size_ - 1u);
  const auto head = mem.read_obj<uint16_t>(GuestAddress(avail_.value() + kAvailRingOff + 2 * slot));
  if (!head) return fail(ChainError::kRingUnreadable);
  ++next_avail_;
  // Neither can be completed through the used ring without confusing the
  // driver further, so the queue stops here and the driver must reset.
  if (*head >= size_) return fail(ChainError::kHeadOutOfRange);
  if (in_flight_[*head]) return fail(ChainError::kHeadInFlight);
  in_flight_[*head] = true;
  ++in_flight_count_;

  PopResult r;
  r.chain.head = *head;
  if (const auto err = walk_chain(mem, *head, r.chain); err != ChainError::kNone) return malformed(*head, err);
  popped_.inc();
  r.status = PopStatus::kChain;
  return r;
}

ChainError Queue::walk_chain(const GuestMemory& mem, uint16_t head, DescriptorChain& out) const {
  GuestAddress table = desc_;
  uint32_t table_len = size_;
  uint32_t ttl = size_;  // a chain cannot be longer than its table: more means a loop
  uint32_t idx = head;
  bool indirect = false;
  uint64_t total = 0;
  for (;;) {
    if (ttl == 0) return ChainError::kChainTooLong;
    --ttl;
    // In range: idx < table_len and the whole table was checked to be in RAM.
    const auto d = mem.read_obj<Desc>(GuestAddress(table.value() + uint64_t{idx} * kDescSize));
    if (!d) return indirect ? ChainError::kIndirectOutOfRam : ChainError::kBufferOutOfRam;
    // From here on only the copy `*d` is used: the guest may rewrite the table.
    const GuestAddress addr(d->addr);
    if (d->flags & VRING_DESC_F_INDIRECT) {
      if (!indirect_) return ChainError::kIndirectNotNegotiated;
      if (indirect) return ChainError::kIndirectNested;
      if (d->flags & VRING_DESC_F_NEXT) return ChainError::kIndirectWithNext;
      if (d->len == 0 || d->len % kDescSize != 0) return ChainError::kIndirectBadLength;
      const uint32_t n = d->len / kDescSize;
      if (n > max_size_) return ChainError::kIndirectTooLarge;
      if (!mem.slice(addr, d->len)) return ChainError::kIndirectOutOfRam;
      // The table replaces the rest of the chain; its entries link only
      // within it, and its length is its own TTL.
      table = addr;
      table_len = ttl = n;
      idx = 0;
      indirect = true;
      continue;
    }
    if (!mem.slice(addr, d->len)) return ChainError::kBufferOutOfRam;
    total += d->len;
    if (total > UINT32_MAX) return ChainError::kLengthOverflow;
    if (d->flags & VRING_DESC_F_WRITE) {
      out.writable.push_back({addr, d->len});
      out.writable_bytes += d->len;
    } else {
      if (!out.writable.empty()) return ChainError::kReadableAfterWritable;
      out.readable.push_back({addr, d->len});
      out.readable_bytes += d->len;
    }
    if (!(d->flags & VRING_DESC_F_NEXT)) return ChainError::kNone;
    if (d->next >= table_len) return ChainError::kNextOutOfRange;
    idx = d->next;
  }
}

bool Queue::add_used(const GuestMemory& mem, uint16_t head, uint32_t len) {
  if (!fill_used(mem, head, len)) return false;
  publish_used(mem);
  return true;
}

bool Queue::fill_used(const GuestMemory& mem, uint16_t head, uint32_t len) {
  if (!ready_ || head >= in_flight_.size() || !in_flight_[head]) {
    add_used_refused_.inc();
    return false;
  }
  const uint64_t slot = static_cast<uint16_t>(next_used_ + filled_) & (size_ - 1u);
  const GuestAddress elem(used_.value() + kUsedRingOff + sizeof(UsedElem) * slot);
  if (!mem.write_obj(elem, UsedElem{head, len})) {
    add_used_refused_.inc();
    return false;
  }
  ++filled_;
  in_flight_[head] = false;
  --in_flight_count_;
  return true;
}

void Queue::publish_used(const GuestMemory& mem) {
  if (filled_ == 0) return;
  // The elements must be visible before the index that publishes them.
  std::atomic_thread_fence(std::memory_order_release);
  next_used_ = static_cast<uint16_t>(next_used_ + filled_);
  filled_ = 0;
  mem.write_obj<uint16_t>(GuestAddress(used_.value() + kUsedIdxOff), next_used_);
}

bool Queue::avail_pending(const GuestMemory& mem) const {
  if (!ready_ || broken_.get()) return false;
  if (next_avail_ != avail_idx_cache_) return true;
  const auto idx = mem.read_obj<uint16_t>(GuestAddress(avail_.value() + kAvailIdxOff));
  return idx && *idx != next_avail_;
}

bool Queue::should_notify(const GuestMemory& mem) {
  if (!ready_) return false;
  // Our used idx store must be ordered before reading the driver's
  // suppression state, or both sides may decide the other will act.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old_used = signalled_used_;
  const uint16_t new_used = next_used_;
  signalled_used_ = new_used;
  if (event_idx_) {
    const GuestAddress used_event(avail_.value() + kAvailRingOff + 2 * uint64_t{size_});
    const auto ev = mem.read_obj<uint16_t>(used_event);
    if (!ev) return true;  // unreachable once validated; notifying is the safe side
    return vring_need_event(*ev, new_used, old_used);
  }
  if (new_used == old_used) return false;
  const auto flags = mem.read_obj<uint16_t>(GuestAddress(avail_.value() + kAvailFlagsOff));
  return !flags || !(*flags & VRING_AVAIL_F_NO_INTERRUPT);
}

}  // namespace ksbox::devices::virtio
