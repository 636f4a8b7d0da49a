// The fake device and the register-level helpers the MMIO transport's tests share.
#pragma once

#include <linux/virtio_mmio.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "devices/virtio/mmio_transport.h"
#include "fake_driver.h"
#include "test_helpers.h"

namespace ksbox::devices::virtio {

using testing::FakeDriver;
using testing::kAvailAddr;
using testing::kDescAddr;
using testing::kUsedAddr;

constexpr uint32_t kAck = VIRTIO_CONFIG_S_ACKNOWLEDGE, kDrv = VIRTIO_CONFIG_S_DRIVER,
                   kFeOk = VIRTIO_CONFIG_S_FEATURES_OK, kDrvOk = VIRTIO_CONFIG_S_DRIVER_OK,
                   kNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET, kFailed = VIRTIO_CONFIG_S_FAILED;
constexpr uint64_t kDeviceSpecific = feature_bit(0) | feature_bit(5);
constexpr uint64_t kV1 = feature_bit(VIRTIO_F_VERSION_1);
constexpr uint64_t kIndirectF = feature_bit(VIRTIO_RING_F_INDIRECT_DESC);
constexpr uint64_t kEventIdxF = feature_bit(VIRTIO_RING_F_EVENT_IDX);
constexpr uint64_t kPackedF = feature_bit(VIRTIO_F_RING_PACKED);

class FakeDevice : public VirtioDevice {
 public:
  uint64_t features = kDeviceSpecific | kV1 | kIndirectF | kEventIdxF | kPackedF;
  std::array<uint16_t, 2> max_sizes{256, 16};
  std::array<uint8_t, 12> config{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  bool activate_result = true;
  bool report_broken = true;
  int activations = 0, resets = 0;
  ActivateContext ctx;
  std::vector<uint16_t> processed;

  uint32_t device_type() const override { return 2; }
  uint64_t device_features() const override { return features; }
  std::span<const uint16_t> queue_max_sizes() const override { return max_sizes; }
  uint32_t config_size() const override { return static_cast<uint32_t>(config.size()); }
  void read_config(uint32_t off, std::span<uint8_t> d) override { std::memcpy(d.data(), &config[off], d.size()); }
  void write_config(uint32_t off, std::span<const uint8_t> d) override {
    std::memcpy(&config[off], d.data(), d.size());
  }
  bool activate(const ActivateContext& c) override {
    ++activations;
    ctx = c;
    return activate_result;
  }
  void reset() override { ++resets; }
  // A trivial device: completes every chain, writing nothing.
  void process_queue(uint16_t index) override {
    processed.push_back(index);
    Queue& q = ctx.queues[index];
    for (;;) {
      auto r = q.pop(*ctx.mem);
      if (r.status == PopStatus::kEmpty) break;
      if (r.status == PopStatus::kBroken) {
        if (report_broken) ctx.interrupt->signal_needs_reset();
        return;
      }
      q.add_used(*ctx.mem, r.chain.head, 0);
    }
    if (q.should_notify(*ctx.mem)) ctx.interrupt->signal_used_queue(index);
  }
};

class MmioTransportTest : public ::testing::Test {
 protected:
  GuestMemory mem = testing::make_two_region_memory();
  std::shared_ptr<FakeDevice> dev = std::make_shared<FakeDevice>();
  int irqs = 0;
  std::unique_ptr<MmioTransport> t = std::make_unique<MmioTransport>(mem, dev, [this] { ++irqs; });

  uint32_t rd(uint64_t off) {
    std::array<uint8_t, 4> b{0xee, 0xee, 0xee, 0xee};
    t->read(off, b);
    uint32_t v;
    std::memcpy(&v, b.data(), 4);
    return v;
  }
  void wr(uint64_t off, uint32_t v) {
    std::array<uint8_t, 4> b;
    std::memcpy(b.data(), &v, 4);
    t->write(off, b);
  }
  void wr64(uint64_t low_off, uint64_t v) {
    wr(low_off, static_cast<uint32_t>(v));
    wr(low_off + 4, static_cast<uint32_t>(v >> 32));
  }
  void negotiate(uint64_t features = kV1) {
    wr(VIRTIO_MMIO_STATUS, kAck);
    wr(VIRTIO_MMIO_STATUS, kAck | kDrv);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
    wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk);
  }
  void setup_queue(uint32_t sel, uint32_t num, uint64_t desc = kDescAddr, uint64_t avail = kAvailAddr,
                   uint64_t used = kUsedAddr) {
    wr(VIRTIO_MMIO_QUEUE_SEL, sel);
    wr(VIRTIO_MMIO_QUEUE_NUM, num);
    wr64(VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
    wr64(VIRTIO_MMIO_QUEUE_AVAIL_LOW, avail);
    wr64(VIRTIO_MMIO_QUEUE_USED_LOW, used);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
  }
  void bring_up() {
    negotiate(kV1 | kIndirectF);
    ASSERT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv | kFeOk);
    setup_queue(1, 16);
    ASSERT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 1u);
    wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk | kDrvOk);
    ASSERT_TRUE(t->activated());
  }
};

}  // namespace ksbox::devices::virtio
