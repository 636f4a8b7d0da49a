// virtio-net (virtio 1.2 §5.1) in front of a NetBackend: one RX and one TX
// queue, mergeable RX buffers, checksum offload both ways, the MAC, link
// status and MTU in config space. No control queue, no multiqueue, no
// segmentation offload: the large MTU (up to 64 KiB) is what keeps the
// per-packet cost down instead.
//
// Threads: process_queue() comes from the queue notifier (or a vCPU);
// receive_frame() and backend_writable() from the backend's thread. One
// mutex serialises them, so the queues are used by one thread at a time.
// The backend is called with that mutex held and must not call back
// synchronously.
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/net/backend.h"
#include "devices/net/frame.h"
#include "devices/virtio/device.h"
#include "devices/virtio/ring.h"

namespace ksbox::devices::net {

using MacAddress = std::array<uint8_t, 6>;

struct NetStats {
  std::array<uint64_t, kTxRefusalCount> tx_refused{};  // per TxRefusal
  uint64_t tx_frames = 0, tx_bytes = 0;  // handed to the backend
  uint64_t rx_frames = 0, rx_bytes = 0;  // written into the guest
  uint64_t rx_dropped_inactive = 0;      // frames while the driver was not up
  uint64_t rx_dropped_backlog = 0;       // frames beyond the backlog (guest not posting buffers)
  uint64_t rx_dropped_too_big = 0;       // frames that do not fit the guest's buffers at all
  uint64_t rx_refused_chains = 0;        // malformed RX chains, or ones too small for a header
  uint64_t tx_refusals(TxRefusal r) const { return tx_refused[static_cast<size_t>(r)]; }
};

class VirtioNet final : public virtio::VirtioDevice, private FrameSink {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
  // Frames waiting for RX buffers, at most (a TCP sender retransmits the rest).
  static constexpr size_t kMaxBacklogFrames = 512;
  static constexpr size_t kMaxBacklogBytes = 8u << 20;

  // Starts the backend with this device as its sink. `mtu` in [68, kMaxMtu].
  VirtioNet(MacAddress mac, uint16_t mtu, std::unique_ptr<NetBackend> backend);
  ~VirtioNet() override;  // stops the backend first

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::span<const uint16_t> queue_max_sizes() const override { return queue_sizes_; }
  uint32_t config_size() const override;
  void read_config(uint32_t offset, std::span<uint8_t> data) override;
  void write_config(uint32_t offset, std::span<const uint8_t> data) override;
  bool activate(const virtio::ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;

  NetStats stats() const;
  // The backend's counters (NetBackend::counters).
  std::vector<std::pair<std::string, uint64_t>> backend_counters() const { return backend_->counters(); }
  uint16_t mtu() const { return mtu_; }

 private:
  // FrameSink.
  void receive_frame(std::span<const uint8_t> frame) override;
  void backend_writable() override;

  // Under mu_ while active.
  void process_tx();
  void flush_backlog();
  enum class Rx : uint8_t { kDelivered, kNoBuffers, kDropped };
  Rx deliver(std::span<const uint8_t> frame);
  // Moves guest RX chains into rx_chains_ until they hold `bytes`
  // (mergeable) or one usable chain is there; false when the guest has
  // posted too few.
  bool gather_rx_chains(uint32_t bytes, bool mergeable);
  void complete_rx(uint16_t head, uint32_t len);
  void mark_broken();
  void notify();
  void refuse(TxRefusal r) { tx_refused_[static_cast<size_t>(r)].inc(); }
  bool has(unsigned bit) const { return (ctx_->features >> bit) & 1; }

  static constexpr std::array<uint16_t, 2> queue_sizes_{kQueueSize, kQueueSize};
  const MacAddress mac_;
  const uint16_t mtu_;

  mutable std::mutex mu_;  // everything below
  std::optional<virtio::ActivateContext> ctx_;
  bool broken_ = false;
  bool rx_used_ = false, tx_used_ = false;
  bool tx_blocked_ = false;  // stopped for the backend; resumed by backend_writable()
  std::deque<virtio::DescriptorChain> rx_chains_;  // popped, not used yet, in ring order
  uint64_t rx_chain_bytes_ = 0;                    // their writable bytes
  std::deque<std::vector<uint8_t>> backlog_;       // frames waiting for RX buffers
  size_t backlog_bytes_ = 0;
  std::vector<uint8_t> tx_buf_;  // one TX packet, copied out of the guest

  std::array<virtio::Counter, kTxRefusalCount> tx_refused_{};
  virtio::Counter tx_frames_, tx_bytes_, rx_frames_, rx_bytes_, rx_inactive_, rx_backlog_drops_,
      rx_too_big_, rx_refused_chains_;

  std::unique_ptr<NetBackend> backend_;  // last: stopped first
};

}  // namespace ksbox::devices::net
