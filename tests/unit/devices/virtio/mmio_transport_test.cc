#include "devices/virtio/mmio_transport.h"

#include <linux/virtio_mmio.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "mmio_fixture.h"

namespace ksbox::devices::virtio {
namespace {

TEST_F(MmioTransportTest, IdentificationRegisters) {
  EXPECT_EQ(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976u);
  EXPECT_EQ(rd(VIRTIO_MMIO_VERSION), 2u);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_ID), 2u);
  EXPECT_EQ(rd(VIRTIO_MMIO_VENDOR_ID), MmioTransport::kVendorId);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
  EXPECT_EQ(rd(VIRTIO_MMIO_CONFIG_GENERATION), 0u);
  EXPECT_EQ(t->stats().malformed_accesses, 0u);
}

TEST_F(MmioTransportTest, NoSharedMemoryRegions) {
  wr(VIRTIO_MMIO_SHM_SEL, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
  EXPECT_EQ(rd(VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffffu);
}

TEST_F(MmioTransportTest, DeviceFeaturesByHalfWithUnsupportedTransportBitsMasked) {
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), static_cast<uint32_t>(kDeviceSpecific | kIndirectF | kEventIdxF));
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), 1u) << "VERSION_1 only: RING_PACKED is not implemented";
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0u);
  EXPECT_EQ(t->offered_features() & kPackedF, 0u);
}

TEST(MmioTransportSetup, DeviceWithoutVersion1IsASetupError) {
  GuestMemory mem = testing::make_two_region_memory();
  auto dev = std::make_shared<FakeDevice>();
  dev->features = kDeviceSpecific;
  EXPECT_KSBOX_ERROR(MmioTransport(mem, dev, nullptr), "VIRTIO_F_VERSION_1");
  dev->features = kV1;
  dev->max_sizes = {256, 100};
  EXPECT_KSBOX_ERROR(MmioTransport(mem, dev, nullptr), "max size");
}

TEST_F(MmioTransportTest, FeatureNegotiationSucceeds) {
  negotiate(kV1 | kEventIdxF | feature_bit(5));
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv | kFeOk);
  EXPECT_EQ(t->driver_features(), kV1 | kEventIdxF | feature_bit(5));
  EXPECT_EQ(t->stats().features_rejected, 0u);
}

TEST_F(MmioTransportTest, FeaturesWithoutVersion1AreRejected) {
  negotiate(kIndirectF);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv) << "FEATURES_OK must read back clear";
  EXPECT_EQ(t->stats().features_rejected, 1u);
}

TEST_F(MmioTransportTest, FeaturesNotOfferedAreRejected) {
  negotiate(kV1 | kPackedF);  // the device has it, the transport does not offer it
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv);
  negotiate(kV1 | feature_bit(7));
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv);
  EXPECT_EQ(t->stats().features_rejected, 2u);
  // The driver may retry with a valid set.
  negotiate(kV1);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv | kFeOk);
}

TEST_F(MmioTransportTest, DriverFeaturesOnlyWritableWhileNegotiating) {
  wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);  // before DRIVER
  EXPECT_EQ(t->stats().refused_writes, 1u);
  negotiate(kV1);
  wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);  // after FEATURES_OK
  EXPECT_EQ(t->stats().refused_writes, 2u);
  EXPECT_EQ(t->driver_features(), kV1);
}

TEST_F(MmioTransportTest, DriverFeaturesSelectorBeyondOneIsRefused) {
  wr(VIRTIO_MMIO_STATUS, kAck);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv);
  wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
  wr(VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
  EXPECT_EQ(t->stats().refused_writes, 1u);
  EXPECT_EQ(t->driver_features(), 0u);
}

TEST_F(MmioTransportTest, StatusBitsOnlyInSpecOrder) {
  wr(VIRTIO_MMIO_STATUS, kDrv);  // skips ACKNOWLEDGE
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
  wr(VIRTIO_MMIO_STATUS, kAck);
  wr(VIRTIO_MMIO_STATUS, kAck | kFeOk);  // skips DRIVER
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kDrvOk);  // skips FEATURES_OK
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv);
  wr(VIRTIO_MMIO_STATUS, kAck);  // clears DRIVER without a reset
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | 0x10);  // undefined bit
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv);
  EXPECT_EQ(t->stats().refused_writes, 5u);
  EXPECT_EQ(dev->activations, 0);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFailed);  // FAILED is always allowed
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv | kFailed);
}

TEST_F(MmioTransportTest, QueueSetupAndActivationOnce) {
  negotiate(kV1 | kIndirectF);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 256u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 16u);
  setup_queue(1, 8);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 1u);
  EXPECT_EQ(t->queue(1).size(), 8);
  EXPECT_EQ(t->queue(1).desc_table(), GuestAddress(kDescAddr));
  EXPECT_EQ(dev->activations, 0) << "not before DRIVER_OK";
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk | kDrvOk);
  EXPECT_EQ(dev->activations, 1);
  EXPECT_EQ(dev->ctx.features, kV1 | kIndirectF);
  ASSERT_EQ(dev->ctx.queues.size(), 2u);
  EXPECT_FALSE(dev->ctx.queues[0].ready());
  EXPECT_TRUE(dev->ctx.queues[1].ready());
  EXPECT_EQ(dev->ctx.mem, &mem);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk | kDrvOk);  // again: no second activation
  EXPECT_EQ(dev->activations, 1);
  EXPECT_EQ(t->stats().refused_writes, 0u);
}

TEST_F(MmioTransportTest, QueueWritesRefusedBeforeFeaturesOk) {
  wr(VIRTIO_MMIO_STATUS, kAck);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv);
  setup_queue(1, 8);  // num, 6 address halves, ready
  EXPECT_EQ(t->stats().refused_writes, 8u);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  EXPECT_EQ(t->queue(1).size(), 16) << "unchanged";
}

TEST_F(MmioTransportTest, QueueWritesRefusedAfterDriverOk) {
  bring_up();
  const auto before = t->stats().refused_writes;
  wr(VIRTIO_MMIO_QUEUE_SEL, 1);
  wr(VIRTIO_MMIO_QUEUE_READY, 0);
  wr(VIRTIO_MMIO_QUEUE_NUM, 4);
  wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
  wr(VIRTIO_MMIO_QUEUE_USED_HIGH, 1);
  EXPECT_EQ(t->stats().refused_writes, before + 4);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 1u);
  EXPECT_EQ(t->queue(1).size(), 16);
  EXPECT_EQ(t->queue(1).desc_table(), GuestAddress(kDescAddr));
  EXPECT_EQ(t->queue(1).used_ring(), GuestAddress(kUsedAddr));
}

TEST_F(MmioTransportTest, QueueAddressWritesRefusedWhileReady) {
  negotiate();
  setup_queue(0, 16);
  wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
  EXPECT_EQ(t->stats().refused_writes, 1u);
  EXPECT_EQ(t->queue(0).desc_table(), GuestAddress(kDescAddr));
  wr(VIRTIO_MMIO_QUEUE_READY, 0);  // the driver may take it down and change it
  wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
  EXPECT_EQ(t->queue(0).desc_table(), GuestAddress(0x5000));
}

TEST_F(MmioTransportTest, OutOfRangeQueueSel) {
  negotiate();
  wr(VIRTIO_MMIO_QUEUE_SEL, 2);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0u) << "how drivers find the number of queues";
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  wr(VIRTIO_MMIO_QUEUE_NUM, 8);
  wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
  wr(VIRTIO_MMIO_QUEUE_READY, 1);
  EXPECT_EQ(t->stats().refused_writes, 3u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0u);
  EXPECT_EQ(t->stats().malformed_accesses, 0u);
}

TEST_F(MmioTransportTest, BadQueueConfigurationIsRefusedAtQueueReady) {
  negotiate();
  setup_queue(0, 16, kDescAddr + 8);  // desc table not 16-aligned
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  setup_queue(0, 12);  // not a power of two
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  setup_queue(0, 512);  // above QueueNumMax
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  setup_queue(0, 16, kDescAddr, kAvailAddr, testing::kLowEnd + 0x100);  // used ring in the gap
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  setup_queue(0, 16, kDescAddr, kAvailAddr, 0x1'0000'3000);  // high half puts it beyond RAM
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  EXPECT_EQ(t->stats().queue_configs_refused, 5u);
  wr(VIRTIO_MMIO_QUEUE_READY, 2);  // neither 0 nor 1
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  setup_queue(0, 16);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 1u);
}

TEST_F(MmioTransportTest, WritingZeroResetsEverything) {
  bring_up();
  t->interrupt().signal_used_queue(1);
  ASSERT_NE(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  wr(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(dev->resets, 1);
  EXPECT_FALSE(t->activated());
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  EXPECT_EQ(t->driver_features(), 0u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  EXPECT_EQ(t->queue(1).desc_table(), GuestAddress(0));
  EXPECT_EQ(t->queue(1).size(), 16);
  // And the device comes back up, activated a second time.
  bring_up();
  EXPECT_EQ(dev->activations, 2);
}

TEST_F(MmioTransportTest, ResetBeforeActivationDoesNotResetTheDevice) {
  negotiate();
  wr(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(dev->resets, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
}

TEST_F(MmioTransportTest, UnalignedAndOddSizedRegisterAccessesAreRefused) {
  std::array<uint8_t, 2> two{0xaa, 0xaa};
  t->read(VIRTIO_MMIO_MAGIC_VALUE, two);
  EXPECT_EQ(two[0], 0);
  EXPECT_EQ(two[1], 0);
  std::array<uint8_t, 4> four{0xaa, 0xaa, 0xaa, 0xaa};
  t->read(VIRTIO_MMIO_MAGIC_VALUE + 1, four);
  EXPECT_EQ(four, (std::array<uint8_t, 4>{}));
  std::array<uint8_t, 8> eight{};
  eight.fill(0xaa);
  t->read(VIRTIO_MMIO_MAGIC_VALUE, eight);
  EXPECT_EQ(eight, (std::array<uint8_t, 8>{}));
  const std::array<uint8_t, 1> one{kAck};
  t->write(VIRTIO_MMIO_STATUS, one);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u) << "a 1-byte status write is refused";
  const std::array<uint8_t, 4> ack{kAck, 0, 0, 0};
  t->write(VIRTIO_MMIO_STATUS + 2, ack);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
  EXPECT_EQ(t->stats().malformed_accesses, 5u);
}

TEST_F(MmioTransportTest, WrongDirectionAndUnknownRegistersAreCounted) {
  rd(VIRTIO_MMIO_QUEUE_SEL);    // write-only
  rd(VIRTIO_MMIO_QUEUE_NOTIFY);  // write-only
  rd(VIRTIO_MMIO_QUEUE_PFN);     // legacy (version 1) only
  rd(0x0f0);                     // nothing there
  wr(VIRTIO_MMIO_MAGIC_VALUE, 0);  // read-only
  wr(VIRTIO_MMIO_INTERRUPT_STATUS, 0xffffffff);
  wr(VIRTIO_MMIO_GUEST_PAGE_SIZE, 4096);
  EXPECT_EQ(t->stats().malformed_accesses, 7u);
  EXPECT_EQ(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976u);
}

TEST_F(MmioTransportTest, ConfigSpaceAccessesOfEverySizeWithinBounds) {
  std::array<uint8_t, 1> b1{};
  t->read(0x100 + 2, b1);
  EXPECT_EQ(b1[0], 3);
  std::array<uint8_t, 2> b2{};
  t->read(0x100 + 1, b2);
  EXPECT_EQ(b2, (std::array<uint8_t, 2>{2, 3}));
  EXPECT_EQ(rd(0x100 + 8), 0x0c0b0a09u);
  std::array<uint8_t, 8> b8{};
  t->read(0x100 + 4, b8);
  EXPECT_EQ(b8, (std::array<uint8_t, 8>{5, 6, 7, 8, 9, 10, 11, 12}));
  wr(0x100, 0xdeadbeef);
  EXPECT_EQ(rd(0x100), 0xdeadbeefu);
  EXPECT_EQ(t->stats().malformed_accesses, 0u);
  // Past the 12-byte config space: refused, reads zero, device untouched.
  t->read(0x100 + 8, b8);
  EXPECT_EQ(b8, (std::array<uint8_t, 8>{}));
  EXPECT_EQ(rd(0x100 + 12), 0u);
  wr(0x100 + 10, 0x11111111);
  EXPECT_EQ(dev->config[10], 11);
  std::array<uint8_t, 3> b3{};
  t->read(0x100, b3);  // odd size
  EXPECT_EQ(t->stats().malformed_accesses, 4u);
}

TEST_F(MmioTransportTest, InterruptStatusAndAck) {
  bring_up();
  t->interrupt().signal_used_queue(1);
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_VRING});
  t->interrupt().signal_config_change();
  EXPECT_EQ(irqs, 2);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG});
  EXPECT_EQ(rd(VIRTIO_MMIO_CONFIG_GENERATION), 1u);
  wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_CONFIG});
  wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
}

TEST_F(MmioTransportTest, QueueNotifyRunsTheDeviceAndSignalsUsedBuffers) {
  bring_up();
  FakeDriver drv(mem, 16);
  drv.desc(0, 0x8000, 64, VRING_DESC_F_WRITE);
  drv.publish(0);
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
  EXPECT_EQ(dev->processed, std::vector<uint16_t>{1});
  EXPECT_EQ(drv.used_idx(), 1);
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_VRING});
}

TEST_F(MmioTransportTest, NotifyOutOfRangeOrBeforeDriverOkIsRefused) {
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);  // not activated
  bring_up();
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 2);
  t->notify(0xffffffff);
  EXPECT_EQ(t->stats().bad_notifies, 3u);
  EXPECT_TRUE(dev->processed.empty());
}

TEST_F(MmioTransportTest, BrokenQueueSetsNeedsResetWithAConfigInterrupt) {
  bring_up();
  FakeDriver drv(mem, 16);
  drv.publish(16);  // head out of range
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
  EXPECT_TRUE(t->queue(1).broken());
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv | kFeOk | kDrvOk | kNeedsReset);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_CONFIG});
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(t->stats().needs_reset, 1u);
  // A driver writing back what it read (NEEDS_RESET included) is not refused...
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk | kDrvOk | kNeedsReset);
  EXPECT_EQ(t->stats().refused_writes, 0u);
  // ...and the driver's reset clears it.
  wr(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
  EXPECT_FALSE(t->queue(1).broken());
}

TEST_F(MmioTransportTest, TransportBacksUpADeviceThatDoesNotReportABrokenQueue) {
  dev->report_broken = false;
  bring_up();
  FakeDriver drv(mem, 16);
  drv.set_avail_idx(100);  // jumps far more than the queue size
  t->notify(1);
  EXPECT_NE(rd(VIRTIO_MMIO_STATUS) & kNeedsReset, 0u);
  EXPECT_EQ(t->stats().needs_reset, 1u);
}

TEST_F(MmioTransportTest, FailedActivationSetsNeedsReset) {
  dev->activate_result = false;
  negotiate();
  setup_queue(1, 16);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk | kDrvOk);
  EXPECT_EQ(dev->activations, 1);
  EXPECT_FALSE(t->activated());
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), kAck | kDrv | kFeOk | kDrvOk | kNeedsReset);
  t->notify(1);
  EXPECT_EQ(t->stats().bad_notifies, 1u);
}

TEST_F(MmioTransportTest, DestroyingTheTransportResetsAnActiveDevice) {
  bring_up();
  t.reset();
  EXPECT_EQ(dev->resets, 1);
}

}  // namespace
}  // namespace ksbox::devices::virtio
