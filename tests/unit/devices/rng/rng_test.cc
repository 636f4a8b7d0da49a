#include "devices/rng/rng.h"

#include <gtest/gtest.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <algorithm>

#include "tests/unit/devices/virtio/fake_driver.h"

namespace ksbox::devices {
namespace {

using virtio::testing::CountingInterrupt;
using virtio::testing::FakeDriver;

constexpr uint16_t kSize = 8;
constexpr uint64_t kBuf = 0x4000;

class VirtioRngTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(queue_.set_size(kSize));
    ASSERT_TRUE(queue_.set_desc_table(GuestAddress(virtio::testing::kDescAddr)));
    ASSERT_TRUE(queue_.set_avail_ring(GuestAddress(virtio::testing::kAvailAddr)));
    ASSERT_TRUE(queue_.set_used_ring(GuestAddress(virtio::testing::kUsedAddr)));
    ASSERT_EQ(queue_.set_ready(mem_, true), virtio::QueueConfigError::kOk);
    ASSERT_TRUE(rng_.activate({rng_.device_features(), std::span(&queue_, 1), &mem_, &irq_}));
  }
  std::vector<uint8_t> guest(uint64_t addr, size_t len) {
    auto s = mem_.slice(GuestAddress(addr), len);
    return s ? std::vector<uint8_t>(s->begin(), s->end()) : std::vector<uint8_t>{};
  }

  GuestMemory mem_ = virtio::testing::make_two_region_memory();
  virtio::Queue queue_{kSize};
  FakeDriver driver_{mem_, kSize};
  CountingInterrupt irq_;
  VirtioRng rng_;
};

TEST_F(VirtioRngTest, AnnouncesItselfAsEntropySourceWithOneQueue) {
  EXPECT_EQ(rng_.device_type(), uint32_t{VIRTIO_ID_RNG});
  EXPECT_EQ(rng_.queue_max_sizes().size(), 1u);
  EXPECT_TRUE(rng_.device_features() & (1ull << 32));  // VERSION_1
}

TEST_F(VirtioRngTest, FillsWritableBuffersAndCompletesWithTheirLength) {
  driver_.desc(0, kBuf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
  driver_.desc(1, kBuf + 64, 32, VRING_DESC_F_WRITE);
  driver_.publish(0);
  rng_.process_queue(0);
  ASSERT_EQ(driver_.used_idx(), 1);
  EXPECT_EQ(driver_.used_elem(0).id, 0u);
  EXPECT_EQ(driver_.used_elem(0).len, 96u);
  const auto bytes = guest(kBuf, 96);
  EXPECT_GT(std::count_if(bytes.begin(), bytes.end(), [](uint8_t b) { return b != 0; }), 80);
  EXPECT_EQ(rng_.bytes_served(), 96u);
  EXPECT_EQ(irq_.used, 1);
}

TEST_F(VirtioRngTest, ReadOnlyBufferGetsNothing) {
  driver_.desc(0, kBuf, 64, 0);
  driver_.publish(0);
  rng_.process_queue(0);
  ASSERT_EQ(driver_.used_idx(), 1);
  EXPECT_EQ(driver_.used_elem(0).len, 0u);
  EXPECT_EQ(guest(kBuf, 64), std::vector<uint8_t>(64, 0));
}

TEST_F(VirtioRngTest, MalformedChainIsCompletedEmptyAndCounted) {
  driver_.desc(0, kBuf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);  // loops to itself
  driver_.publish(0);
  rng_.process_queue(0);
  ASSERT_EQ(driver_.used_idx(), 1);
  EXPECT_EQ(driver_.used_elem(0).len, 0u);
  EXPECT_EQ(rng_.requests_refused(), 1u);
}

TEST_F(VirtioRngTest, BrokenQueueAsksForReset) {
  driver_.desc(0, kBuf, 64, VRING_DESC_F_WRITE);
  driver_.publish(kSize + 3);  // head out of range
  rng_.process_queue(0);
  EXPECT_EQ(irq_.needs_reset, 1);
  EXPECT_EQ(driver_.used_idx(), 0);
}

TEST_F(VirtioRngTest, OneRequestIsCappedAtTheLimit) {
  // 48 KiB at the top of low RAM plus 64 KiB of high RAM: 112 KiB asked.
  const uint64_t high = virtio::testing::kHighStart;
  driver_.desc(0, kBuf, 0xc000, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
  driver_.desc(1, high, 0x10000, VRING_DESC_F_WRITE);
  driver_.publish(0);
  rng_.process_queue(0);
  ASSERT_EQ(driver_.used_idx(), 1);
  EXPECT_EQ(driver_.used_elem(0).len, VirtioRng::kMaxRequestBytes);
  // Past the cap (16 KiB into the second buffer) the guest's bytes are untouched.
  EXPECT_EQ(guest(high + 0x4000, 0xc000), std::vector<uint8_t>(0xc000, 0));
}

TEST_F(VirtioRngTest, IgnoresNotificationsAfterReset) {
  rng_.reset();
  driver_.desc(0, kBuf, 64, VRING_DESC_F_WRITE);
  driver_.publish(0);
  rng_.process_queue(0);
  EXPECT_EQ(driver_.used_idx(), 0);
  EXPECT_EQ(irq_.used, 0);
}

}  // namespace
}  // namespace ksbox::devices
