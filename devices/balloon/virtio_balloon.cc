#include "devices/balloon/virtio_balloon.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace ksbox::devices::balloon {
namespace {

using virtio::feature_bit;

constexpr uint32_t kActualOffset = offsetof(virtio_balloon_config, actual);

// Counters are written under the device mutex only; readers just load them.
void add(virtio::Counter& c, uint64_t n) { c.set(c.get() + n); }

}  // namespace

uint32_t VirtioBalloon::device_type() const { return VIRTIO_ID_BALLOON; }

uint64_t VirtioBalloon::device_features() const {
  // Not offered: MUST_TELL_HOST (deflated pages need no host work), free
  // page hinting (a migration aid) and PAGE_POISON (reported pages read back
  // as zeros, so a guest that poisons free pages must not report them).
  return feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_RING_F_EVENT_IDX) |
         feature_bit(VIRTIO_RING_F_INDIRECT_DESC) | feature_bit(VIRTIO_BALLOON_F_STATS_VQ) |
         feature_bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | feature_bit(VIRTIO_BALLOON_F_REPORTING);
}

void VirtioBalloon::read_config(uint32_t offset, std::span<uint8_t> data) {
  virtio_balloon_config c{};
  c.num_pages = target_pages_.load();  // little-endian host (ring.h)
  c.actual = actual_pages_.load();
  const auto* bytes = reinterpret_cast<const uint8_t*>(&c);
  // The transport only forwards accesses inside config_size().
  std::memcpy(data.data(), bytes + offset, data.size());
}

void VirtioBalloon::write_config(uint32_t offset, std::span<const uint8_t> data) {
  if (offset < kActualOffset || offset + data.size() > kActualOffset + sizeof(uint32_t)) {
    config_refused_.inc();
    return;
  }
  uint32_t actual = actual_pages_.load();
  std::memcpy(reinterpret_cast<uint8_t*>(&actual) + (offset - kActualOffset), data.data(), data.size());
  actual_pages_.store(actual);
}

bool VirtioBalloon::activate(const virtio::ActivateContext& ctx) {
  std::lock_guard lock(mu_);
  if (ctx.queues.size() != kQueues) return false;
  roles_.fill(std::nullopt);
  uint16_t next = 0;
  roles_[next++] = Role::kInflate;
  roles_[next++] = Role::kDeflate;
  if (ctx.features & feature_bit(VIRTIO_BALLOON_F_STATS_VQ)) roles_[next++] = Role::kStats;
  if (ctx.features & feature_bit(VIRTIO_BALLOON_F_REPORTING)) roles_[next++] = Role::kReporting;
  ctx_ = ctx;
  stats_head_.reset();
  // Linux 6.1 primes the stats queue and kicks it before DRIVER_OK, when
  // the transport still drops notifications: look for that buffer now.
  if (const auto stats = std::find(roles_.begin(), roles_.end(), Role::kStats); stats != roles_.end())
    drain(static_cast<uint16_t>(stats - roles_.begin()));
  return true;
}

void VirtioBalloon::reset() {
  std::lock_guard lock(mu_);
  ctx_.reset();
  roles_.fill(std::nullopt);
  stats_head_.reset();
  used_ = false;
  actual_pages_.store(0);
}

std::optional<uint16_t> VirtioBalloon::queue_index(Role role) const {
  std::lock_guard lock(mu_);
  for (uint16_t i = 0; i < kQueues; ++i)
    if (roles_[i] == role) return i;
  return std::nullopt;
}

void VirtioBalloon::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!ctx_ || index >= kQueues || !roles_[index]) return;
  drain(index);
}

void VirtioBalloon::drain(uint16_t index) {
  const Role role = *roles_[index];
  auto& q = ctx_->queues[index];
  used_ = false;
  for (;;) {
    auto r = q.pop(*ctx_->mem);
    if (r.status == virtio::PopStatus::kEmpty || r.status == virtio::PopStatus::kBroken) break;
    if (r.status == virtio::PopStatus::kMalformed) {
      // The queue counted why; complete the head so the driver does not hang.
      complete(q, r.chain.head);
    } else if (role == Role::kStats) {
      take_stats(q, r.chain);
    } else {
      take_pages(q, r.chain, role);
    }
  }
  if (q.broken()) {
    ctx_->interrupt->signal_needs_reset();
    return;
  }
  if (used_ && q.should_notify(*ctx_->mem)) ctx_->interrupt->signal_used_queue(index);
}

void VirtioBalloon::complete(virtio::Queue& q, uint16_t head) {
  q.add_used(*ctx_->mem, head, 0);
  used_ = true;
}

void VirtioBalloon::refuse(RequestError e) { refused_[static_cast<size_t>(e)].inc(); }

void VirtioBalloon::take_pages(virtio::Queue& q, const virtio::DescriptorChain& chain, Role role) {
  const GuestMemory& mem = *ctx_->mem;
  const PageRequest req = role == Role::kReporting ? parse_report(chain, mem) : parse_pfn_list(chain, mem);
  if (req.error != RequestError::kNone) {
    refuse(req.error);
  } else if (role == Role::kDeflate) {
    add(deflated_, req.pages);
  } else {
    discard(req.ranges);
    add(role == Role::kInflate ? inflated_ : reported_, req.pages);
  }
  complete(q, chain.head);
}

void VirtioBalloon::discard(const std::vector<PageRange>& ranges) {
  for (const auto& range : ranges) {
    switch (ctx_->mem->discard(range.addr, range.len)) {
      case GuestMemory::DiscardResult::kOk:
        add(discarded_bytes_, range.len);
        break;
      case GuestMemory::DiscardResult::kHostError:
        host_errors_.inc();
        break;
      default:  // validated by the parser: cannot happen
        refuse(RequestError::kOutOfRam);
        break;
    }
  }
}

void VirtioBalloon::take_stats(virtio::Queue& q, const virtio::DescriptorChain& chain) {
  auto req = parse_stats(chain, *ctx_->mem);
  if (req.error != RequestError::kNone) {
    refuse(req.error);
  } else {
    stats_ = std::move(req.stats);
    stats_time_ = std::chrono::steady_clock::now();
    stats_updates_.inc();
  }
  // The driver keeps one buffer with the device; a second one replaces
  // (and returns) the first.
  if (stats_head_) complete(q, *stats_head_);
  stats_head_ = chain.head;
}

void VirtioBalloon::set_target_pages(uint32_t pages) {
  std::lock_guard lock(mu_);
  target_pages_.store(pages);
  if (ctx_) ctx_->interrupt->signal_config_change();
}

bool VirtioBalloon::request_stats() {
  std::lock_guard lock(mu_);
  if (!ctx_ || !stats_head_) return false;
  const auto index = std::find(roles_.begin(), roles_.end(), Role::kStats) - roles_.begin();
  auto& q = ctx_->queues[static_cast<size_t>(index)];
  used_ = false;
  complete(q, *stats_head_);
  stats_head_.reset();
  if (q.should_notify(*ctx_->mem)) ctx_->interrupt->signal_used_queue(static_cast<uint16_t>(index));
  return true;
}

std::vector<BalloonStat> VirtioBalloon::last_stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::optional<std::chrono::steady_clock::time_point> VirtioBalloon::last_stats_time() const {
  std::lock_guard lock(mu_);
  return stats_time_;
}

BalloonCounters VirtioBalloon::counters() const {
  BalloonCounters c;
  c.inflated_pages = inflated_.get();
  c.deflated_pages = deflated_.get();
  c.reported_pages = reported_.get();
  c.discarded_bytes = discarded_bytes_.get();
  for (const auto& r : refused_) c.refused += r.get();
  c.host_errors = host_errors_.get();
  c.stats_updates = stats_updates_.get();
  return c;
}

}  // namespace ksbox::devices::balloon
