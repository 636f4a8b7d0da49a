// virtio-blk (virtio 1.2 §5.2) over a raw image file, served by the VMM.
//
// One request queue. Requests are parsed and validated (request.h), then
// run on an AsyncIo engine: with io_uring several requests are in the kernel
// at once and complete from the CQ on the device thread (host_event_fd());
// with the sync engine each runs inside process_queue(). Host errors (ENOSPC,
// EIO, ...) fail that request with VIRTIO_BLK_S_IOERR; the device goes on.
//
// Offered: FLUSH (fdatasync) with CONFIG_WCE (writethrough mode writes with
// RWF_DSYNC, i.e. FUA semantics on every write), DISCARD (punch a hole),
// WRITE_ZEROES (zero range, or punch with unmap), GET_ID (serial), RO,
// SEG_MAX, SIZE_MAX, BLK_SIZE, indirect descriptors and EVENT_IDX.
//
// One mutex serialises the queue, the completions and reset(); reset()
// waits for the I/O in flight before the guest memory may go away.
#pragma once

#include <linux/virtio_blk.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/blk/disk_image.h"
#include "devices/blk/request.h"
#include "devices/io/async_io.h"
#include "devices/virtio/device.h"

namespace ksbox::devices::blk {

struct BlkStats {
  uint64_t completed = 0;     // requests answered (any status)
  uint64_t io_errors = 0;     // requests failed by the host (IOERR after I/O)
  uint64_t refused = 0;       // chains refused by the queue or the parser
  uint64_t reads = 0, writes = 0;  // read and write requests started
};

class VirtioBlk final : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kSegMax = kQueueSize - 2;    // header and status take two
  static constexpr uint32_t kSizeMax = 1u << 20;         // bytes per data segment
  static constexpr uint32_t kMaxRanges = 16;             // discard/write-zeroes ranges per request
  static constexpr uint32_t kMaxRangeSectors = 1u << 22;  // 2 GiB per range
  static constexpr uint32_t kDiscardAlignSectors = 8;    // 4 KiB: whole host pages get freed

  // Throws ksbox::Error when `io` is kIoUring and io_uring is unavailable
  // (kAuto falls back to the sync engine and says so on stderr).
  VirtioBlk(DiskImage disk, io::IoEngineKind io = io::IoEngineKind::kAuto);
  // With a given engine (tests).
  VirtioBlk(DiskImage disk, std::unique_ptr<io::AsyncIo> engine);
  ~VirtioBlk() override;

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::span<const uint16_t> queue_max_sizes() const override { return queue_sizes_; }
  uint32_t config_size() const override { return sizeof(virtio_blk_config); }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;
  // Only the writeback byte (VIRTIO_BLK_F_CONFIG_WCE) is writable.
  void write_config(uint32_t offset, std::span<const uint8_t> data) override;
  bool activate(const virtio::ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;
  int host_event_fd() const override { return engine_->event_fd(); }
  void on_host_event() override;

  const DiskImage& disk() const { return disk_; }
  std::string_view engine_name() const { return engine_->name(); }
  BlkStats stats() const;
  const ParseStats& parse_stats() const { return parse_stats_; }

  // Ops in the engine at once (an io_uring's entries).
  static constexpr unsigned kEngineCapacity = kQueueSize;

 private:
  struct InFlight {
    uint32_t type = 0;
    uint8_t* status = nullptr;
    uint32_t used_len = 0;
    uint32_t pending = 0;  // ops not yet completed
    uint8_t result = VIRTIO_BLK_S_OK;
    std::vector<Range> ranges;
  };

  void pump();  // pops, submits and completes what it can; under mu_
  void start(uint16_t head, BlkRequest& req);
  bool submit_range(uint16_t head, uint32_t index, const Range& r, bool punch);
  void reap();
  void on_completion(const io::IoCompletion& c);
  void finish(uint16_t head);
  void reply_now(uint16_t head, uint8_t* status, uint8_t code, uint32_t used_len);
  void report_host_error(const char* what, int64_t err);
  bool writethrough() const;

  static constexpr std::array<uint16_t, 1> queue_sizes_{kQueueSize};
  DiskImage disk_;
  std::unique_ptr<io::AsyncIo> engine_;
  virtio_blk_config config_{};

  std::mutex mu_;
  std::optional<virtio::ActivateContext> ctx_;
  BlkLimits limits_;
  std::vector<InFlight> inflight_;  // by head
  std::vector<io::IoCompletion> completions_;
  bool used_ = false;               // add_used() since the last notify check
  bool zero_range_unsupported_ = false;
  std::atomic<uint8_t> writeback_{1};

  ParseStats parse_stats_;
  virtio::Counter completed_, io_errors_, refused_, reads_, writes_, errors_reported_;
};

}  // namespace ksbox::devices::blk
