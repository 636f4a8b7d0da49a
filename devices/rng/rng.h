// virtio-rng: fills the guest's buffers from the host's getrandom(), so the
// guest's entropy pool never stalls boot or early userspace.
#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <optional>

#include "devices/virtio/device.h"

namespace ksbox::devices {

class VirtioRng final : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Bytes served per request at most: bounds the work one notification costs.
  static constexpr uint32_t kMaxRequestBytes = 64 * 1024;

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::span<const uint16_t> queue_max_sizes() const override { return queue_sizes_; }
  uint32_t config_size() const override { return 0; }
  void read_config(uint32_t, std::span<uint8_t>) override {}
  void write_config(uint32_t, std::span<const uint8_t>) override {}
  bool activate(const virtio::ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;

  uint64_t bytes_served() const { return bytes_.load(std::memory_order_relaxed); }
  uint64_t requests_refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::array<uint16_t, 1> queue_sizes_{kQueueSize};
  std::mutex mu_;  // serialises processing against reset
  std::optional<virtio::ActivateContext> ctx_;
  std::atomic<uint64_t> bytes_{0}, refused_{0};
};

}  // namespace ksbox::devices
