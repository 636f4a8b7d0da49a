#include "devices/virtio/queue.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "fake_driver.h"
#include "test_helpers.h"

namespace ksbox::devices::virtio {
namespace {

using testing::FakeDriver;
using testing::kAvailAddr;
using testing::kDescAddr;
using testing::kHighEnd;
using testing::kHighStart;
using testing::kLowEnd;
using testing::kUsedAddr;

constexpr uint16_t kMax = 256;
constexpr uint16_t kSize = 16;
constexpr uint16_t R = 0;  // device-readable
constexpr uint16_t N = VRING_DESC_F_NEXT;
constexpr uint16_t W = VRING_DESC_F_WRITE;
constexpr uint16_t I = VRING_DESC_F_INDIRECT;
constexpr uint64_t kIndirect = 0x4000;  // an indirect table
constexpr uint64_t kBuf = 0x8000;       // data buffers

class QueueTest : public ::testing::Test {
 protected:
  GuestMemory mem = testing::make_two_region_memory();
  Queue q{kMax};
  FakeDriver drv{mem, kSize};

  void SetUp() override { configure(); }

  void configure(uint64_t features = 0) {
    q.reset();
    ASSERT_TRUE(q.set_size(kSize));
    q.set_desc_table(GuestAddress(kDescAddr));
    q.set_avail_ring(GuestAddress(kAvailAddr));
    q.set_used_ring(GuestAddress(kUsedAddr));
    q.set_features(features);
    ASSERT_EQ(q.set_ready(mem, true), QueueConfigError::kOk);
  }

  // Pops one chain expected to be refused with `err`; completes it with length 0.
  void expect_malformed(ChainError err, uint16_t head = 0) {
    const auto r = q.pop(mem);
    ASSERT_EQ(r.status, PopStatus::kMalformed) << to_string(r.error);
    EXPECT_EQ(r.error, err) << to_string(r.error);
    EXPECT_EQ(r.chain.head, head);
    EXPECT_TRUE(r.chain.readable.empty() && r.chain.writable.empty());
    EXPECT_EQ(q.error_count(err), 1u);
    EXPECT_FALSE(q.broken()) << "a malformed chain with a valid head does not break the queue";
    // The guest must not hang: the head completes with nothing written.
    ASSERT_TRUE(q.add_used(mem, head, 0));
    EXPECT_EQ(drv.used_idx(), 1);
    EXPECT_EQ(drv.used_elem(0).id, head);
    EXPECT_EQ(drv.used_elem(0).len, 0u);
  }

  void expect_broken(ChainError err) {
    const auto r = q.pop(mem);
    EXPECT_EQ(r.status, PopStatus::kBroken);
    EXPECT_EQ(r.error, err) << to_string(r.error);
    EXPECT_TRUE(q.broken());
    EXPECT_EQ(q.error_count(err), 1u);
    EXPECT_EQ(q.pop(mem).status, PopStatus::kBroken) << "stays broken until reset";
    EXPECT_EQ(q.error_count(err), 1u) << "counted once";
  }
};

// --- configuration -----------------------------------------------------------

TEST(QueueConfig, MaxSizeMustBeAPowerOfTwoUpTo32768) {
  EXPECT_KSBOX_ERROR(Queue(0), "max size");
  EXPECT_KSBOX_ERROR(Queue(3), "max size");
  EXPECT_KSBOX_ERROR(Queue(40000), "max size");
  EXPECT_EQ(Queue(32768).max_size(), 32768);
  EXPECT_EQ(Queue(1).size(), 1) << "size defaults to the maximum";
}

TEST_F(QueueTest, SizeMustBeNonzeroPowerOfTwoAndAtMostMax) {
  q.set_ready(mem, false);
  EXPECT_FALSE(q.set_size(0));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kBadSize);
  EXPECT_FALSE(q.set_size(kMax * 2));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kBadSize) << "a refused size must not leave the old one in place";
  EXPECT_FALSE(q.set_size(12));
  EXPECT_EQ(q.set_ready(mem, true), QueueConfigError::kBadSize);
  EXPECT_FALSE(q.ready());
  EXPECT_TRUE(q.set_size(1));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOk);
  EXPECT_TRUE(q.set_size(kMax));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOk);
}

TEST_F(QueueTest, RingsMustBeAligned) {
  q.set_ready(mem, false);
  q.set_desc_table(GuestAddress(kDescAddr + 8));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kMisaligned);
  q.set_desc_table(GuestAddress(kDescAddr));
  q.set_avail_ring(GuestAddress(kAvailAddr + 1));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kMisaligned);
  q.set_avail_ring(GuestAddress(kAvailAddr + 2));
  q.set_used_ring(GuestAddress(kUsedAddr + 2));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kMisaligned);
  q.set_used_ring(GuestAddress(kUsedAddr + 4));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOk) << "avail 2- and used 4-aligned is enough";
}

TEST_F(QueueTest, RingsMustLieWhollyInRamIncludingTheEventIdxField) {
  q.set_ready(mem, false);
  // Desc table crossing the end of the low region into the gap.
  q.set_desc_table(GuestAddress(kLowEnd - 16 * kSize + 16));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOutOfRam);
  q.set_desc_table(GuestAddress(kLowEnd - 16 * kSize));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOk);
  // Avail ring: flags, idx, ring[16] fit, but used_event (2 more bytes) does not.
  q.set_avail_ring(GuestAddress(kLowEnd - (4 + 2 * kSize)));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOutOfRam);
  q.set_avail_ring(GuestAddress(kLowEnd - (6 + 2 * kSize)));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOk);
  // Used ring: same for avail_event; 4-aligned placements only.
  q.set_used_ring(GuestAddress(kHighEnd - (4 + 8 * kSize)));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOutOfRam);
  q.set_used_ring(GuestAddress(kHighEnd - (8 + 8 * kSize)));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOk);
  // Inside the gap, and past the end of RAM.
  q.set_used_ring(GuestAddress(kLowEnd + 0x1000));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOutOfRam);
  q.set_used_ring(GuestAddress(0xffff'ffff'ffff'fff0));
  EXPECT_EQ(q.validate(mem), QueueConfigError::kOutOfRam);
}

TEST_F(QueueTest, ConfigurationIsFrozenWhileReady) {
  EXPECT_FALSE(q.set_size(8));
  EXPECT_FALSE(q.set_desc_table(GuestAddress(0x5000)));
  EXPECT_FALSE(q.set_avail_ring(GuestAddress(0x5000)));
  EXPECT_FALSE(q.set_used_ring(GuestAddress(0x5000)));
  EXPECT_EQ(q.size(), kSize);
  EXPECT_EQ(q.desc_table(), GuestAddress(kDescAddr));
}

TEST_F(QueueTest, NotReadyQueuePopsNothing) {
  drv.desc(0, kBuf, 8);
  drv.publish(0);
  q.set_ready(mem, false);
  EXPECT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_FALSE(q.add_used(mem, 0, 0));
}

// --- well-formed chains --------------------------------------------------------

TEST_F(QueueTest, EmptyRingPopsNothing) {
  EXPECT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(q.errors_total(), 0u);
}

TEST_F(QueueTest, DirectChainSplitsReadableAndWritableSegments) {
  drv.desc(3, kBuf, 100, R | N, 7);
  drv.desc(7, kBuf + 0x100, 50, R | N, 1);
  drv.desc(1, kBuf + 0x1000, 200, W);
  drv.publish(3);
  auto r = q.pop(mem);
  ASSERT_EQ(r.status, PopStatus::kChain) << to_string(r.error);
  EXPECT_EQ(r.chain.head, 3);
  ASSERT_EQ(r.chain.readable.size(), 2u);
  EXPECT_EQ(r.chain.readable[0].addr, GuestAddress(kBuf));
  EXPECT_EQ(r.chain.readable[0].len, 100u);
  EXPECT_EQ(r.chain.readable[1].addr, GuestAddress(kBuf + 0x100));
  ASSERT_EQ(r.chain.writable.size(), 1u);
  EXPECT_EQ(r.chain.writable[0].addr, GuestAddress(kBuf + 0x1000));
  EXPECT_EQ(r.chain.readable_bytes, 150u);
  EXPECT_EQ(r.chain.writable_bytes, 200u);
  EXPECT_EQ(q.in_flight(), 1);
  EXPECT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(q.chains_popped(), 1u);
}

TEST_F(QueueTest, BuffersInTheHighRegionAreAccepted) {
  drv.desc(0, kHighStart, 0x1000, W | N, 1);
  drv.desc(1, kHighEnd - 0x10, 0x10, W);  // ends exactly at the end of RAM
  drv.publish(0);
  auto r = q.pop(mem);
  ASSERT_EQ(r.status, PopStatus::kChain) << to_string(r.error);
  EXPECT_EQ(r.chain.writable_bytes, 0x1010u);
}

TEST_F(QueueTest, IndirectTableChainsWithinItself) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.write_desc_at(kIndirect, 0, kBuf, 16, R | N, 2);
  drv.write_desc_at(kIndirect, 2, kBuf + 0x100, 32, W | N, 1);
  drv.write_desc_at(kIndirect, 1, kBuf + 0x200, 64, W);
  drv.desc(5, kIndirect, 3 * 16, I);
  drv.publish(5);
  auto r = q.pop(mem);
  ASSERT_EQ(r.status, PopStatus::kChain) << to_string(r.error);
  EXPECT_EQ(r.chain.head, 5);
  ASSERT_EQ(r.chain.readable.size(), 1u);
  ASSERT_EQ(r.chain.writable.size(), 2u);
  EXPECT_EQ(r.chain.writable[0].addr, GuestAddress(kBuf + 0x100));
  EXPECT_EQ(r.chain.writable[1].addr, GuestAddress(kBuf + 0x200));
  EXPECT_EQ(r.chain.readable_bytes + r.chain.writable_bytes, 112u);
}

TEST_F(QueueTest, DirectDescriptorsFollowedByAnIndirectTable) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.desc(0, kBuf, 10, R | N, 1);
  drv.desc(1, kIndirect, 2 * 16, I | W);  // WRITE on an indirect descriptor is ignored
  drv.write_desc_at(kIndirect, 0, kBuf + 0x100, 20, R | N, 1);
  drv.write_desc_at(kIndirect, 1, kBuf + 0x200, 30, W);
  drv.publish(0);
  auto r = q.pop(mem);
  ASSERT_EQ(r.status, PopStatus::kChain) << to_string(r.error);
  EXPECT_EQ(r.chain.readable.size(), 2u);
  EXPECT_EQ(r.chain.writable.size(), 1u);
  EXPECT_EQ(r.chain.readable_bytes, 30u);
  EXPECT_EQ(r.chain.writable_bytes, 30u);
}

TEST_F(QueueTest, AFullRingOfDistinctHeadsPops) {
  for (uint16_t i = 0; i < kSize; ++i) {
    drv.desc(i, kBuf + 0x10 * i, 0x10, W);
    drv.publish(static_cast<uint16_t>(kSize - 1 - i));
  }
  for (uint16_t i = 0; i < kSize; ++i) {
    auto r = q.pop(mem);
    ASSERT_EQ(r.status, PopStatus::kChain) << i;
    EXPECT_EQ(r.chain.head, kSize - 1 - i);
  }
  EXPECT_EQ(q.in_flight(), kSize);
  EXPECT_EQ(q.pop(mem).status, PopStatus::kEmpty);
}

TEST_F(QueueTest, AddUsedPublishesElementThenIndex) {
  drv.desc(2, kBuf, 64, W);
  drv.publish(2);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_TRUE(q.add_used(mem, 2, 40));
  EXPECT_EQ(drv.used_idx(), 1);
  EXPECT_EQ(drv.used_elem(0).id, 2u);
  EXPECT_EQ(drv.used_elem(0).len, 40u);
  EXPECT_EQ(q.in_flight(), 0);
  // The head may be offered again once used.
  drv.publish(2);
  EXPECT_EQ(q.pop(mem).status, PopStatus::kChain);
}

// A mergeable rx packet spans several chains: the driver must see all of
// them or none, or it drops the packet ("buffers missing").
TEST_F(QueueTest, FilledElementsStayHiddenUntilPublished) {
  for (uint16_t i = 0; i < 3; ++i) {
    drv.desc(i, kBuf + 0x100 * i, 0x100, W);
    drv.publish(i);
    ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  }
  ASSERT_TRUE(q.fill_used(mem, 0, 0x100));
  ASSERT_TRUE(q.fill_used(mem, 1, 0x80));
  EXPECT_EQ(drv.used_idx(), 0) << "filled, not published";
  EXPECT_EQ(q.next_used(), 0);
  EXPECT_EQ(q.in_flight(), 1);
  EXPECT_FALSE(q.fill_used(mem, 1, 0)) << "a head is used once, published or not";
  q.publish_used(mem);
  EXPECT_EQ(drv.used_idx(), 2);
  EXPECT_EQ(drv.used_elem(0).id, 0u);
  EXPECT_EQ(drv.used_elem(1).id, 1u);
  EXPECT_EQ(drv.used_elem(1).len, 0x80u);
  q.publish_used(mem);
  EXPECT_EQ(drv.used_idx(), 2) << "nothing filled, nothing published";
  // add_used() goes after the filled ones and publishes them with itself.
  ASSERT_TRUE(q.fill_used(mem, 2, 8));
  drv.publish(0);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_TRUE(q.add_used(mem, 0, 9));
  EXPECT_EQ(drv.used_idx(), 4);
  EXPECT_EQ(drv.used_elem(2).id, 2u);
  EXPECT_EQ(drv.used_elem(3).len, 9u);
}

TEST_F(QueueTest, ResetForgetsFilledElements) {
  drv.desc(0, kBuf, 8, W);
  drv.publish(0);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_TRUE(q.fill_used(mem, 0, 8));
  configure();
  q.publish_used(mem);
  EXPECT_EQ(q.next_used(), 0);
}

TEST_F(QueueTest, AvailAndUsedIndicesWrapAt65535) {
  drv.desc(0, kBuf, 8, W);
  for (uint32_t n = 0; n < 65536 + 3; ++n) {
    drv.publish(0);
    auto r = q.pop(mem);
    ASSERT_EQ(r.status, PopStatus::kChain) << "at " << n << ": " << to_string(r.error);
    ASSERT_TRUE(q.add_used(mem, 0, static_cast<uint32_t>(n)));
    ASSERT_EQ(drv.used_idx(), static_cast<uint16_t>(n + 1));
  }
  EXPECT_EQ(drv.used_idx(), 3) << "65539 completions wrap the u16 index to 3";
  EXPECT_EQ(q.next_avail(), 3);
  EXPECT_EQ(drv.used_elem(65538 % kSize).len, 65538u);
  EXPECT_EQ(q.errors_total(), 0u);
}

// --- refused chains: head valid, completed with length 0 --------------------

TEST_F(QueueTest, LoopThroughNextIsRefused) {
  drv.desc(0, kBuf, 8, R | N, 1);
  drv.desc(1, kBuf, 8, R | N, 0);
  drv.publish(0);
  expect_malformed(ChainError::kChainTooLong);
}

TEST_F(QueueTest, SelfLoopIsRefused) {
  drv.desc(4, kBuf, 8, W | N, 4);
  drv.publish(4);
  expect_malformed(ChainError::kChainTooLong, 4);
}

TEST_F(QueueTest, ChainAsLongAsTheTableIsAccepted) {
  for (uint16_t i = 0; i < kSize; ++i) drv.desc(i, kBuf, 1, (i + 1 < kSize ? N : 0), static_cast<uint16_t>(i + 1));
  drv.publish(0);
  auto r = q.pop(mem);
  ASSERT_EQ(r.status, PopStatus::kChain) << to_string(r.error);
  EXPECT_EQ(r.chain.readable.size(), kSize);
}

TEST_F(QueueTest, NextOutOfRangeIsRefused) {
  drv.desc(0, kBuf, 8, R | N, kSize);
  drv.publish(0);
  expect_malformed(ChainError::kNextOutOfRange);
}

TEST_F(QueueTest, IndirectWithoutTheFeatureIsRefused) {
  drv.write_desc_at(kIndirect, 0, kBuf, 8, R);
  drv.desc(0, kIndirect, 16, I);
  drv.publish(0);
  expect_malformed(ChainError::kIndirectNotNegotiated);
}

TEST_F(QueueTest, NestedIndirectIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.write_desc_at(kIndirect, 0, kIndirect + 0x100, 16, I);
  drv.write_desc_at(kIndirect + 0x100, 0, kBuf, 8, R);
  drv.desc(0, kIndirect, 16, I);
  drv.publish(0);
  expect_malformed(ChainError::kIndirectNested);
}

TEST_F(QueueTest, IndirectWithNextIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.write_desc_at(kIndirect, 0, kBuf, 8, R);
  drv.desc(0, kIndirect, 16, I | N, 1);
  drv.desc(1, kBuf, 8, W);
  drv.publish(0);
  expect_malformed(ChainError::kIndirectWithNext);
}

TEST_F(QueueTest, IndirectLengthNotAMultipleOf16IsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.desc(0, kIndirect, 24, I);
  drv.publish(0);
  expect_malformed(ChainError::kIndirectBadLength);
}

TEST_F(QueueTest, EmptyIndirectTableIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.desc(0, kIndirect, 0, I);
  drv.publish(0);
  expect_malformed(ChainError::kIndirectBadLength);
}

TEST_F(QueueTest, IndirectTableLargerThanTheQueueMaximumIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.desc(0, kIndirect, 16 * (kMax + 1), I);  // in RAM, but one entry too many
  drv.publish(0);
  expect_malformed(ChainError::kIndirectTooLarge);
}

TEST_F(QueueTest, IndirectTableOutsideRamIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.desc(0, kLowEnd - 16, 32, I);  // second entry would be in the gap
  drv.publish(0);
  expect_malformed(ChainError::kIndirectOutOfRam);
}

TEST_F(QueueTest, IndirectNextBeyondItsTableIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.write_desc_at(kIndirect, 0, kBuf, 8, R | N, 1);
  drv.write_desc_at(kIndirect, 1, kBuf, 8, R | N, 2);  // table has 2 entries
  drv.write_desc_at(kIndirect, 2, kBuf, 8, R);          // present in memory, not in the table
  drv.desc(0, kIndirect, 32, I);
  drv.publish(0);
  expect_malformed(ChainError::kNextOutOfRange);
}

TEST_F(QueueTest, LoopInsideAnIndirectTableIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.write_desc_at(kIndirect, 0, kBuf, 8, W | N, 1);
  drv.write_desc_at(kIndirect, 1, kBuf, 8, W | N, 0);
  drv.desc(0, kIndirect, 32, I);
  drv.publish(0);
  expect_malformed(ChainError::kChainTooLong);
}

TEST_F(QueueTest, BufferCrossingTheEndOfRamIsRefused) {
  drv.desc(0, kHighEnd - 0x10, 0x11, W);
  drv.publish(0);
  expect_malformed(ChainError::kBufferOutOfRam);
}

TEST_F(QueueTest, BufferCrossingARegionGapIsRefused) {
  drv.desc(0, kLowEnd - 0x10, 0x20, R);
  drv.publish(0);
  expect_malformed(ChainError::kBufferOutOfRam);
}

TEST_F(QueueTest, BufferInsideTheGapIsRefused) {
  drv.desc(0, kLowEnd + 0x100, 1, R);
  drv.publish(0);
  expect_malformed(ChainError::kBufferOutOfRam);
}

TEST_F(QueueTest, BufferWhoseAddressPlusLengthWrapsIsRefused) {
  drv.desc(0, 0xffff'ffff'ffff'fff0, 0x20, W);
  drv.publish(0);
  expect_malformed(ChainError::kBufferOutOfRam);
}

TEST_F(QueueTest, ReadableAfterWritableIsRefused) {
  drv.desc(0, kBuf, 8, W | N, 1);
  drv.desc(1, kBuf + 0x100, 8, R);
  drv.publish(0);
  expect_malformed(ChainError::kReadableAfterWritable);
}

TEST_F(QueueTest, ReadableAfterWritableAcrossAnIndirectTableIsRefused) {
  configure(feature_bit(VIRTIO_RING_F_INDIRECT_DESC));
  drv.desc(0, kBuf, 8, W | N, 1);
  drv.desc(1, kIndirect, 16, I);
  drv.write_desc_at(kIndirect, 0, kBuf + 0x100, 8, R);
  drv.publish(0);
  expect_malformed(ChainError::kReadableAfterWritable);
}

TEST(QueueLength, TotalChainLengthMustFitInU32) {
  // 4 GiB + 64 KiB of (lazily reserved) RAM so that the buffers themselves are valid.
  GuestMemory big({{GuestAddress(0), (uint64_t{1} << 32) + 0x10000}});
  Queue q(16);
  q.set_desc_table(GuestAddress(kDescAddr));
  q.set_avail_ring(GuestAddress(kAvailAddr));
  q.set_used_ring(GuestAddress(kUsedAddr));
  ASSERT_EQ(q.set_ready(big, true), QueueConfigError::kOk);
  FakeDriver drv(big, 16);
  drv.desc(0, 0x10000, 0xffff'ffff, W | N, 1);
  drv.desc(1, 0x8000, 1, W);
  drv.publish(0);
  auto r = q.pop(big);
  EXPECT_EQ(r.status, PopStatus::kMalformed);
  EXPECT_EQ(r.error, ChainError::kLengthOverflow) << to_string(r.error);
  // One byte less fits exactly.
  drv.desc(2, 0x10000, 0xffff'fffe, W | N, 3);
  drv.desc(3, 0x8000, 1, W);
  drv.publish(2);
  r = q.pop(big);
  ASSERT_EQ(r.status, PopStatus::kChain) << to_string(r.error);
  EXPECT_EQ(r.chain.writable_bytes, 0xffff'ffffu);
}

// --- refusals that break the queue -------------------------------------------

TEST_F(QueueTest, HeadOutOfRangeBreaksTheQueue) {
  drv.publish(kSize);
  expect_broken(ChainError::kHeadOutOfRange);
  EXPECT_EQ(drv.used_idx(), 0) << "nothing can be completed for an invalid head";
}

TEST_F(QueueTest, AvailIdxMoreThanSizeAheadBreaksTheQueue) {
  drv.desc(0, kBuf, 8, W);
  drv.set_avail_idx(kSize + 1);
  expect_broken(ChainError::kAvailIdxJump);
}

TEST_F(QueueTest, AvailIdxGoingBackwardsBreaksTheQueue) {
  drv.desc(0, kBuf, 8, W);
  drv.publish(0);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  drv.set_avail_idx(0);  // the driver "takes back" an entry
  expect_broken(ChainError::kAvailIdxJump);
}

TEST_F(QueueTest, DuplicateInFlightHeadBreaksTheQueue) {
  drv.desc(0, kBuf, 8, W);
  drv.publish(0);
  drv.publish(0);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  expect_broken(ChainError::kHeadInFlight);
  EXPECT_TRUE(q.add_used(mem, 0, 0)) << "the first, legitimate, use still completes";
}

TEST_F(QueueTest, ResetClearsBrokenAndRingState) {
  drv.publish(kSize);
  EXPECT_EQ(q.pop(mem).status, PopStatus::kBroken);
  q.reset();
  EXPECT_FALSE(q.broken());
  EXPECT_FALSE(q.ready());
  EXPECT_EQ(q.size(), kMax);
  EXPECT_EQ(q.desc_table(), GuestAddress(0));
  EXPECT_EQ(q.next_avail(), 0);
  EXPECT_EQ(q.error_count(ChainError::kHeadOutOfRange), 1u) << "metrics survive a reset";
}

// --- add_used refusals ------------------------------------------------------------

TEST_F(QueueTest, AddUsedOfAHeadNotInFlightIsRefused) {
  EXPECT_FALSE(q.add_used(mem, 3, 0));
  EXPECT_FALSE(q.add_used(mem, kSize, 0));
  EXPECT_FALSE(q.add_used(mem, 0xffff, 0));
  EXPECT_EQ(q.add_used_refused(), 3u);
  EXPECT_EQ(drv.used_idx(), 0);
  drv.desc(3, kBuf, 8, W);
  drv.publish(3);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  EXPECT_TRUE(q.add_used(mem, 3, 8));
  EXPECT_FALSE(q.add_used(mem, 3, 8)) << "used twice";
  EXPECT_EQ(q.add_used_refused(), 4u);
  EXPECT_EQ(drv.used_idx(), 1);
}

// --- interrupt suppression ----------------------------------------------------------

TEST(VringNeedEvent, MatchesTheSpecIncludingWrapAround) {
  EXPECT_TRUE(vring_need_event(5, 6, 5));
  EXPECT_FALSE(vring_need_event(5, 5, 4)) << "event 5 means: after the 6th entry";
  EXPECT_TRUE(vring_need_event(5, 10, 0));
  EXPECT_FALSE(vring_need_event(10, 5, 0));
  EXPECT_TRUE(vring_need_event(0xffff, 0, 0xfffe));
  EXPECT_FALSE(vring_need_event(0xffff, 1, 0)) << "65535 is not in (0, 1]";
  EXPECT_TRUE(vring_need_event(0, 2, 0xfffe)) << "crossing the wrap";
  EXPECT_FALSE(vring_need_event(3, 3, 3)) << "nothing new, never";
}

TEST_F(QueueTest, NoInterruptFlagSuppressesNotification) {
  drv.desc(0, kBuf, 8, W);
  drv.desc(1, kBuf, 8, W);
  drv.publish(0);
  drv.publish(1);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  EXPECT_FALSE(q.should_notify(mem)) << "nothing used yet";
  q.add_used(mem, 0, 0);
  EXPECT_TRUE(q.should_notify(mem));
  EXPECT_FALSE(q.should_notify(mem)) << "already notified for that entry";
  drv.set_avail_flags(VRING_AVAIL_F_NO_INTERRUPT);
  q.add_used(mem, 1, 0);
  EXPECT_FALSE(q.should_notify(mem));
}

TEST_F(QueueTest, EventIdxNotifiesOnlyWhenUsedEventIsPassed) {
  configure(feature_bit(VIRTIO_RING_F_EVENT_IDX));
  for (uint16_t i = 0; i < 4; ++i) {
    drv.desc(i, kBuf, 8, W);
    drv.publish(i);
    ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  }
  drv.set_avail_flags(VRING_AVAIL_F_NO_INTERRUPT);  // ignored with EVENT_IDX
  drv.set_used_event(1);                             // "interrupt me after entry #1 is used"
  q.add_used(mem, 0, 0);                             // used idx 1
  EXPECT_FALSE(q.should_notify(mem));
  q.add_used(mem, 1, 0);  // used idx 2: passes used_event
  EXPECT_TRUE(q.should_notify(mem));
  q.add_used(mem, 2, 0);
  EXPECT_FALSE(q.should_notify(mem)) << "event already passed";
  drv.set_used_event(2);  // stale event: behind us
  q.add_used(mem, 3, 0);
  EXPECT_FALSE(q.should_notify(mem));
}

TEST_F(QueueTest, EventIdxBatchesSeveralUsedEntries) {
  configure(feature_bit(VIRTIO_RING_F_EVENT_IDX));
  for (uint16_t i = 0; i < 3; ++i) {
    drv.desc(i, kBuf, 8, W);
    drv.publish(i);
    ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  }
  drv.set_used_event(1);
  for (uint16_t i = 0; i < 3; ++i) q.add_used(mem, i, 0);  // idx 0 → 3 crosses event 1
  EXPECT_TRUE(q.should_notify(mem));
}

TEST_F(QueueTest, EventIdxPublishesAvailEventBeforeGoingIdle) {
  configure(feature_bit(VIRTIO_RING_F_EVENT_IDX));
  drv.desc(0, kBuf, 8, W);
  drv.desc(1, kBuf, 8, W);
  drv.publish(0);
  drv.publish(1);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(drv.avail_event(), 2) << "kick me when avail idx moves past 2";
}

// A queue that may wait (virtio-fs FORGETs): the driver is asked to kick
// only when the n-th buffer past those consumed arrives (vring_need_event:
// avail_event is the index whose publication kicks), never beyond a full
// ring; reset() asks for every buffer again.
TEST_F(QueueTest, KickBatchAsksForAKickOnlyAfterNBuffers) {
  configure(feature_bit(VIRTIO_RING_F_EVENT_IDX));
  q.set_kick_batch(4);
  drv.desc(0, kBuf, 8, W);
  drv.publish(0);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(drv.avail_event(), 1 + 3) << "the 4th buffer after the one consumed kicks";
  q.set_kick_batch(1000);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(drv.avail_event(), 1 + kSize - 1) << "at most a full ring";
  q.set_kick_batch(0);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(drv.avail_event(), 1) << "0 means 1";
  q.set_kick_batch(4);
  configure(feature_bit(VIRTIO_RING_F_EVENT_IDX));  // resets the queue; the ring still holds 1 buffer
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(drv.avail_event(), 1);
}

// For a device polling the ring: a look at the avail idx that consumes and
// writes nothing, and sees nothing on a queue that is not ready or broken.
TEST_F(QueueTest, AvailPendingSeesNewBuffersAndChangesNothing) {
  configure(feature_bit(VIRTIO_RING_F_EVENT_IDX));
  EXPECT_FALSE(q.avail_pending(mem));
  drv.desc(0, kBuf, 8, W);
  drv.publish(0);
  EXPECT_TRUE(q.avail_pending(mem));
  EXPECT_TRUE(q.avail_pending(mem)) << "still there: nothing was consumed";
  EXPECT_EQ(q.next_avail(), 0);
  EXPECT_EQ(drv.avail_event(), 0) << "and nothing was written";
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  EXPECT_FALSE(q.avail_pending(mem));
  drv.desc(1, kBuf, 8, W);
  drv.publish(1);
  q.reset();
  EXPECT_FALSE(q.avail_pending(mem)) << "not ready";
  configure(feature_bit(VIRTIO_RING_F_EVENT_IDX));
  drv.set_avail_idx(kSize + 5);  // more than a ring ahead
  ASSERT_EQ(q.pop(mem).status, PopStatus::kBroken);
  EXPECT_FALSE(q.avail_pending(mem)) << "broken";
}

TEST_F(QueueTest, WithoutEventIdxAvailEventIsNotWritten) {
  ASSERT_TRUE(mem.write_obj<uint16_t>(GuestAddress(kUsedAddr + 4 + 8 * kSize), 0x1234));
  drv.desc(0, kBuf, 8, W);
  drv.publish(0);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kChain);
  ASSERT_EQ(q.pop(mem).status, PopStatus::kEmpty);
  EXPECT_EQ(drv.avail_event(), 0x1234);
}

}  // namespace
}  // namespace ksbox::devices::virtio
