// virtio-balloon (virtio 1.2 §5.5): lets the guest give memory back to the
// host, so that the configured guest memory is a limit, not a reservation.
//
//  - Free page reporting (VIRTIO_BALLOON_F_REPORTING): the guest reports
//    free page blocks (Linux: a pageblock and larger, 4 MiB in our guest
//    kernel, 2 MiB with hugetlbfs; ~2 s after they were freed);
//    the device discards them (GuestMemory::discard: MADV_DONTNEED), and the
//    guest's next touch gets fresh zeroed pages.
//  - Inflate/deflate: the host sets a target (set_target_pages(), e.g. from
//    the control socket); the driver inflates the balloon towards it and the
//    inflated pages are discarded the same way. Deflated pages need no work:
//    they come back on the guest's next touch.
//  - Deflate on OOM (VIRTIO_BALLOON_F_DEFLATE_ON_OOM): the guest takes pages
//    back from the balloon instead of killing a process when it runs out.
//  - Memory statistics (VIRTIO_BALLOON_F_STATS_VQ): the driver leaves one
//    buffer with the device, which gives it back to ask for fresh numbers.
//
// Queue numbers follow the negotiated features, as Linux assigns them:
// inflate 0, deflate 1, then statsq and reporting_vq only when negotiated
// (reporting is queue 2 when the driver declined the stats queue).
//
// Every request is validated whole before a page is discarded (see
// balloon_request.h); refusals are counted by reason and the chain is still
// completed, so the driver never waits forever. One mutex serialises the
// queues, the host-side calls and reset().
#pragma once

#include <linux/virtio_balloon.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/balloon/balloon_request.h"
#include "devices/virtio/device.h"

namespace ksbox::devices::balloon {

struct BalloonCounters {
  uint64_t inflated_pages = 0;   // PFNs the guest put into the balloon
  uint64_t deflated_pages = 0;   // PFNs it took back
  uint64_t reported_pages = 0;   // free pages the guest reported
  uint64_t discarded_bytes = 0;  // host memory released (inflated + reported)
  uint64_t refused = 0;          // requests refused, any reason
  uint64_t host_errors = 0;      // discards the host failed (madvise)
  uint64_t stats_updates = 0;    // stats buffers received
};

class VirtioBalloon final : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 128;  // Linux needs >= 32 for reporting
  enum class Role : uint8_t { kInflate, kDeflate, kStats, kReporting };
  static constexpr size_t kQueues = 4;

  VirtioBalloon() = default;

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::span<const uint16_t> queue_max_sizes() const override { return queue_sizes_; }
  uint32_t config_size() const override { return sizeof(virtio_balloon_config); }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;
  // Only `actual` (bytes 4..7) is the driver's to write; the rest is refused.
  void write_config(uint32_t offset, std::span<const uint8_t> data) override;
  bool activate(const virtio::ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;

  // --- Host side, any thread.
  // The balloon size the driver should reach, in 4 KiB pages (num_pages).
  void set_target_pages(uint32_t pages);
  uint32_t target_pages() const { return target_pages_.load(); }
  // The balloon size the driver last reported (actual).
  uint32_t actual_pages() const { return actual_pages_.load(); }
  // Gives the held stats buffer back so the driver refills it; false when
  // the driver has none with the device (no stats queue, or not yet).
  bool request_stats();
  // The guest's last memory statistics and when they came; empty before any.
  std::vector<BalloonStat> last_stats() const;
  std::optional<std::chrono::steady_clock::time_point> last_stats_time() const;

  // The queue index a role has under the negotiated features, if any.
  std::optional<uint16_t> queue_index(Role role) const;
  BalloonCounters counters() const;
  uint64_t refused(RequestError e) const { return refused_[static_cast<size_t>(e)].get(); }
  uint64_t config_writes_refused() const { return config_refused_.get(); }

 private:
  // Takes every available chain of queue `index` (which has a role); under mu_.
  void drain(uint16_t index);
  // One well-formed chain of `role`'s queue: acted on (or refused) and completed.
  void take_pages(virtio::Queue& q, const virtio::DescriptorChain& chain, Role role);
  // The driver's stats buffer: read, then held until request_stats().
  void take_stats(virtio::Queue& q, const virtio::DescriptorChain& chain);
  void discard(const std::vector<PageRange>& ranges);
  void refuse(RequestError e);
  // Completes `head` with nothing written and remembers to notify.
  void complete(virtio::Queue& q, uint16_t head);

  static constexpr std::array<uint16_t, kQueues> queue_sizes_{kQueueSize, kQueueSize, kQueueSize, kQueueSize};

  std::atomic<uint32_t> target_pages_{0}, actual_pages_{0};

  mutable std::mutex mu_;
  std::optional<virtio::ActivateContext> ctx_;
  std::array<std::optional<Role>, kQueues> roles_{};  // by queue index
  bool used_ = false;                                  // add_used() since the last notify check
  std::optional<uint16_t> stats_head_;                 // the driver's stats buffer, held
  std::vector<BalloonStat> stats_;
  std::optional<std::chrono::steady_clock::time_point> stats_time_;

  virtio::Counter inflated_, deflated_, reported_, discarded_bytes_, host_errors_, stats_updates_, config_refused_;
  std::array<virtio::Counter, static_cast<size_t>(RequestError::kCount)> refused_{};
};

}  // namespace ksbox::devices::balloon
