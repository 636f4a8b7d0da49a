// virtio-balloon against a fake driver on real guest memory: descriptors in,
// discarded pages (they read back as zeros) and counters out.
#include "devices/balloon/virtio_balloon.h"

#include <gtest/gtest.h>

#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <vector>

#include "tests/unit/devices/virtio/fake_driver.h"

namespace ksbox::devices::balloon {
namespace {

using virtio::feature_bit;
using Role = VirtioBalloon::Role;
using virtio::testing::CountingInterrupt;
using virtio::testing::FakeDriver;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPage = 4096;
// RAM: [0, 1 MiB) and [2 MiB, 3 MiB).
constexpr uint64_t kHighStart = 2 * kMiB;
constexpr uint16_t kSize = 8;
constexpr uint64_t kPfnBuf = 0x20000, kStatsBuf = 0x21000;
constexpr uint64_t kPages = 0x80000;  // pages the tests give away start here (PFN 0x80)

uint64_t ring_base(size_t q) { return 0x1000 + q * 0x3000; }

class VirtioBalloonTest : public ::testing::Test {
 protected:
  void SetUp() override { activate(dev_.device_features()); }

  void activate(uint64_t features) {
    for (size_t i = 0; i < VirtioBalloon::kQueues; ++i) {
      auto& q = queues_[i];
      q.reset();
      q.set_features(features);
      ASSERT_TRUE(q.set_size(kSize));
      ASSERT_TRUE(q.set_desc_table(GuestAddress(ring_base(i))));
      ASSERT_TRUE(q.set_avail_ring(GuestAddress(ring_base(i) + 0x1000)));
      ASSERT_TRUE(q.set_used_ring(GuestAddress(ring_base(i) + 0x2000)));
      ASSERT_EQ(q.set_ready(mem_, true), virtio::QueueConfigError::kOk);
    }
    ASSERT_TRUE(dev_.activate({features, queues_, &mem_, &irq_}));
  }
  // The driver side of `role`'s queue (one per queue, kept for the test).
  FakeDriver& driver(Role role) {
    const auto q = dev_.queue_index(role);
    EXPECT_TRUE(q.has_value());
    const uint64_t base = ring_base(q.value_or(0));
    return drivers_.try_emplace(q.value_or(0), mem_, kSize, base, base + 0x1000, base + 0x2000).first->second;
  }
  // Sends the PFNs in one readable buffer on `role`'s queue.
  FakeDriver& send_pfns(Role role, const std::vector<uint32_t>& pfns) {
    auto& d = driver(role);
    EXPECT_TRUE(mem_.write_bytes(GuestAddress(kPfnBuf), {reinterpret_cast<const uint8_t*>(pfns.data()),
                                                         pfns.size() * sizeof(uint32_t)}));
    d.desc(0, kPfnBuf, static_cast<uint32_t>(pfns.size() * sizeof(uint32_t)));
    d.publish(0);
    dev_.process_queue(*dev_.queue_index(role));
    return d;
  }
  void fill(uint64_t addr, uint64_t len, uint8_t v) {
    auto s = mem_.slice(GuestAddress(addr), len);
    ASSERT_TRUE(s);
    std::fill(s->begin(), s->end(), v);
  }
  // Whether the page at `addr` reads as all zeros (discarded) or all `v`.
  bool page_is(uint64_t addr, uint8_t v) {
    auto s = mem_.slice(GuestAddress(addr), kPage);
    return s && std::all_of(s->begin(), s->end(), [v](uint8_t b) { return b == v; });
  }
  uint32_t config_u32(uint32_t offset) {
    uint32_t v = 0;
    dev_.read_config(offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }

  GuestMemory mem_{{{GuestAddress(0), kMiB}, {GuestAddress(kHighStart), kMiB}}};
  std::array<virtio::Queue, VirtioBalloon::kQueues> queues_{virtio::Queue(kSize), virtio::Queue(kSize),
                                                            virtio::Queue(kSize), virtio::Queue(kSize)};
  CountingInterrupt irq_;
  VirtioBalloon dev_;
  std::map<uint16_t, FakeDriver> drivers_;
};

TEST_F(VirtioBalloonTest, OffersReportingDeflateOnOomAndStatsButNothingThatNeedsHostWorkOnDeflate) {
  EXPECT_EQ(dev_.device_type(), uint32_t{VIRTIO_ID_BALLOON});
  EXPECT_EQ(dev_.queue_max_sizes().size(), 4u);
  const uint64_t f = dev_.device_features();
  EXPECT_TRUE(f & feature_bit(VIRTIO_F_VERSION_1));
  EXPECT_TRUE(f & feature_bit(VIRTIO_BALLOON_F_REPORTING));
  EXPECT_TRUE(f & feature_bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
  EXPECT_TRUE(f & feature_bit(VIRTIO_BALLOON_F_STATS_VQ));
  EXPECT_FALSE(f & feature_bit(VIRTIO_BALLOON_F_MUST_TELL_HOST));
  EXPECT_FALSE(f & feature_bit(VIRTIO_BALLOON_F_PAGE_POISON));  // reported pages come back as zeros
  EXPECT_FALSE(f & feature_bit(VIRTIO_BALLOON_F_FREE_PAGE_HINT));
  for (const uint16_t max : dev_.queue_max_sizes()) EXPECT_GE(max, 32) << "Linux needs 32 for reporting";
}

TEST_F(VirtioBalloonTest, QueueNumbersFollowTheNegotiatedFeaturesAsLinuxAssignsThem) {
  EXPECT_EQ(dev_.queue_index(Role::kInflate), 0);
  EXPECT_EQ(dev_.queue_index(Role::kDeflate), 1);
  EXPECT_EQ(dev_.queue_index(Role::kStats), 2);
  EXPECT_EQ(dev_.queue_index(Role::kReporting), 3);
  dev_.reset();
  activate(feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_BALLOON_F_REPORTING));
  EXPECT_EQ(dev_.queue_index(Role::kStats), std::nullopt);
  EXPECT_EQ(dev_.queue_index(Role::kReporting), 2);
  dev_.process_queue(3);  // no role: ignored
  EXPECT_EQ(irq_.used, 0);
}

TEST_F(VirtioBalloonTest, TargetIsTheHostsAndActualIsTheDriversToWrite) {
  dev_.set_target_pages(1234);
  EXPECT_EQ(irq_.config, 1);
  EXPECT_EQ(config_u32(offsetof(virtio_balloon_config, num_pages)), 1234u);
  const uint32_t actual = 1000;
  dev_.write_config(offsetof(virtio_balloon_config, actual), {reinterpret_cast<const uint8_t*>(&actual), 4});
  EXPECT_EQ(dev_.actual_pages(), 1000u);
  EXPECT_EQ(config_u32(offsetof(virtio_balloon_config, actual)), 1000u);
  // The guest cannot move the target, nor write past `actual`.
  dev_.write_config(offsetof(virtio_balloon_config, num_pages), {reinterpret_cast<const uint8_t*>(&actual), 4});
  dev_.write_config(offsetof(virtio_balloon_config, actual) + 2, {reinterpret_cast<const uint8_t*>(&actual), 4});
  EXPECT_EQ(dev_.target_pages(), 1234u);
  EXPECT_EQ(dev_.actual_pages(), 1000u);
  EXPECT_EQ(dev_.config_writes_refused(), 2u);
}

TEST_F(VirtioBalloonTest, InflateDiscardsExactlyTheListedPages) {
  fill(kPages, 8 * kPage, 0xaa);
  auto& d = send_pfns(Role::kInflate, {0x83, 0x80, 0x81, kHighStart / kPage + 1});
  ASSERT_EQ(d.used_idx(), 1);
  EXPECT_EQ(d.used_elem(0).len, 0u);
  EXPECT_EQ(irq_.used, 1);
  EXPECT_TRUE(page_is(kPages, 0));
  EXPECT_TRUE(page_is(kPages + kPage, 0));
  EXPECT_TRUE(page_is(kPages + 2 * kPage, 0xaa));
  EXPECT_TRUE(page_is(kPages + 3 * kPage, 0));
  EXPECT_TRUE(page_is(kPages + 4 * kPage, 0xaa));
  const auto c = dev_.counters();
  EXPECT_EQ(c.inflated_pages, 4u);
  EXPECT_EQ(c.discarded_bytes, 4 * kPage);
  EXPECT_EQ(c.refused, 0u);
}

TEST_F(VirtioBalloonTest, DeflateLeavesThePagesAlone) {
  fill(kPages, kPage, 0xaa);
  auto& d = send_pfns(Role::kDeflate, {0x80, 0x81});
  ASSERT_EQ(d.used_idx(), 1);
  EXPECT_TRUE(page_is(kPages, 0xaa));
  EXPECT_EQ(dev_.counters().deflated_pages, 2u);
  EXPECT_EQ(dev_.counters().discarded_bytes, 0u);
}

TEST_F(VirtioBalloonTest, OnePfnOutsideRamRefusesTheWholeRequest) {
  fill(kPages, kPage, 0xaa);
  for (const uint32_t bad : {uint32_t{kMiB / kPage}, uint32_t{kHighStart / kPage + kMiB / kPage}, ~0u}) {
    SCOPED_TRACE(bad);
    auto& d = send_pfns(Role::kInflate, {0x80, bad});
    EXPECT_EQ(d.used_idx(), dev_.refused(RequestError::kOutOfRam)) << "the chain is still completed";
    EXPECT_TRUE(page_is(kPages, 0xaa));
  }
  EXPECT_EQ(dev_.refused(RequestError::kOutOfRam), 3u);
  EXPECT_EQ(dev_.counters().inflated_pages, 0u);
  EXPECT_EQ(dev_.counters().discarded_bytes, 0u);
}

TEST_F(VirtioBalloonTest, MalformedPfnListsAreRefusedAndCounted) {
  fill(kPages, kPage, 0xaa);
  auto& d = driver(Role::kInflate);
  ASSERT_TRUE(mem_.write_obj<uint32_t>(GuestAddress(kPfnBuf), 0x80));
  d.desc(0, kPfnBuf, 6);  // a PFN and a half
  d.publish(0);
  d.desc(1, kPfnBuf, 4, VRING_DESC_F_WRITE);  // device-writable
  d.publish(1);
  d.desc(2, kPfnBuf, (kMaxPfnsPerRequest + 1) * 4);
  d.publish(2);
  dev_.process_queue(0);
  EXPECT_EQ(d.used_idx(), 3);
  EXPECT_EQ(dev_.refused(RequestError::kBadLength), 1u);
  EXPECT_EQ(dev_.refused(RequestError::kWrongDirection), 1u);
  EXPECT_EQ(dev_.refused(RequestError::kTooLarge), 1u);
  EXPECT_TRUE(page_is(kPages, 0xaa));
}

TEST_F(VirtioBalloonTest, ReportedRangesAreDiscardedWhole) {
  fill(kPages, 16 * kPage, 0xaa);
  fill(kHighStart, 4 * kPage, 0xaa);
  auto& d = driver(Role::kReporting);
  d.desc(0, kPages, 2 * kPage, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
  d.desc(1, kHighStart, 4 * kPage, VRING_DESC_F_WRITE);
  d.publish(0);
  dev_.process_queue(3);
  ASSERT_EQ(d.used_idx(), 1);
  EXPECT_TRUE(page_is(kPages, 0));
  EXPECT_TRUE(page_is(kPages + kPage, 0));
  EXPECT_TRUE(page_is(kPages + 2 * kPage, 0xaa));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(page_is(kHighStart + i * kPage, 0));
  EXPECT_EQ(dev_.counters().reported_pages, 6u);
  EXPECT_EQ(dev_.counters().discarded_bytes, 6 * kPage);
}

TEST_F(VirtioBalloonTest, ReportsThatAreNotWholeWritablePagesAreRefused) {
  fill(kPages, 4 * kPage, 0xaa);
  auto& d = driver(Role::kReporting);
  d.desc(0, kPages + 16, kPage, VRING_DESC_F_WRITE);  // not page aligned
  d.publish(0);
  d.desc(1, kPages, kPage + 1, VRING_DESC_F_WRITE);  // a page and a byte
  d.publish(1);
  d.desc(2, kPages, kPage);  // device-readable
  d.publish(2);
  // A chain with one bad range is refused whole.
  d.desc(3, kPages, kPage, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 4);
  d.desc(4, kPages + kPage + 8, kPage, VRING_DESC_F_WRITE);
  d.publish(3);
  // Past the end of RAM: the queue refuses the chain before the device sees it.
  d.desc(5, kMiB - kPage, 2 * kPage, VRING_DESC_F_WRITE);
  d.publish(5);
  dev_.process_queue(3);
  EXPECT_EQ(d.used_idx(), 5);
  EXPECT_EQ(dev_.refused(RequestError::kMisaligned), 3u);
  EXPECT_EQ(dev_.refused(RequestError::kWrongDirection), 1u);
  EXPECT_EQ(queues_[3].error_count(virtio::ChainError::kBufferOutOfRam), 1u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(page_is(kPages + i * kPage, 0xaa)) << i;
  EXPECT_EQ(dev_.counters().discarded_bytes, 0u);
}

TEST_F(VirtioBalloonTest, StatsBufferIsHeldUntilTheHostAsksForFreshNumbers) {
  EXPECT_FALSE(dev_.request_stats()) << "no buffer yet";
  auto& d = driver(Role::kStats);
  const auto post = [&](uint16_t head, uint64_t free_bytes) {
    std::array<uint8_t, 20> raw{};
    const uint16_t t0 = VIRTIO_BALLOON_S_MEMFREE, t1 = VIRTIO_BALLOON_S_MEMTOT;
    const uint64_t total = 512 * kMiB;
    std::memcpy(raw.data(), &t0, 2);
    std::memcpy(raw.data() + 2, &free_bytes, 8);
    std::memcpy(raw.data() + 10, &t1, 2);
    std::memcpy(raw.data() + 12, &total, 8);
    ASSERT_TRUE(mem_.write_bytes(GuestAddress(kStatsBuf), raw));
    d.desc(head, kStatsBuf, 20);
    d.publish(head);
    dev_.process_queue(2);
  };
  post(0, 100 * kMiB);
  EXPECT_EQ(d.used_idx(), 0) << "the device keeps the buffer";
  EXPECT_EQ(dev_.last_stats(), (std::vector<BalloonStat>{{VIRTIO_BALLOON_S_MEMFREE, 100 * kMiB},
                                                         {VIRTIO_BALLOON_S_MEMTOT, 512 * kMiB}}));
  EXPECT_TRUE(dev_.last_stats_time().has_value());
  EXPECT_TRUE(dev_.request_stats());
  EXPECT_EQ(d.used_idx(), 1);
  EXPECT_EQ(d.used_elem(0).id, 0u);
  EXPECT_EQ(irq_.used, 1);
  EXPECT_FALSE(dev_.request_stats()) << "given back already";
  post(1, 50 * kMiB);
  EXPECT_EQ(dev_.last_stats()[0].val, 50 * kMiB);
  EXPECT_EQ(dev_.counters().stats_updates, 2u);
  // A ragged buffer is counted, and still held (the driver has no other).
  d.desc(2, kStatsBuf, 15);
  d.publish(2);
  dev_.process_queue(2);
  EXPECT_EQ(dev_.refused(RequestError::kBadLength), 1u);
  EXPECT_EQ(d.used_idx(), 2) << "the previous buffer went back";
  EXPECT_EQ(dev_.last_stats()[0].val, 50 * kMiB);
  EXPECT_TRUE(dev_.request_stats());
  EXPECT_EQ(d.used_idx(), 3);
}

TEST_F(VirtioBalloonTest, StatsBufferKickedBeforeDriverOkIsFoundAtActivation) {
  dev_.reset();
  // Linux 6.1 primes the stats queue during probe, before DRIVER_OK: the
  // transport drops that kick, the buffer is in the ring all the same.
  FakeDriver stats(mem_, kSize, ring_base(2), ring_base(2) + 0x1000, ring_base(2) + 0x2000);
  stats.desc(0, kStatsBuf, 10);
  activate(dev_.device_features());  // resets the rings, then the driver publishes...
  dev_.reset();
  stats.publish(0);
  ASSERT_TRUE(dev_.activate({dev_.device_features(), queues_, &mem_, &irq_}));  // ...before DRIVER_OK
  EXPECT_EQ(dev_.counters().stats_updates, 1u);
  EXPECT_TRUE(dev_.request_stats());
  EXPECT_EQ(stats.used_idx(), 1);
}

TEST_F(VirtioBalloonTest, ResetDropsTheQueuesAndTheHeldStatsBuffer) {
  auto& d = driver(Role::kStats);
  d.desc(0, kStatsBuf, 10);
  d.publish(0);
  dev_.process_queue(2);
  dev_.reset();
  EXPECT_FALSE(dev_.request_stats());
  fill(kPages, kPage, 0xaa);
  ASSERT_TRUE(mem_.write_obj<uint32_t>(GuestAddress(kPfnBuf), 0x80));
  auto inflate = FakeDriver(mem_, kSize, ring_base(0), ring_base(0) + 0x1000, ring_base(0) + 0x2000);
  inflate.desc(0, kPfnBuf, 4);
  inflate.publish(0);
  dev_.process_queue(0);
  EXPECT_EQ(inflate.used_idx(), 0);
  EXPECT_TRUE(page_is(kPages, 0xaa));
  dev_.set_target_pages(7);  // no driver to tell: kept for the next one
  EXPECT_EQ(irq_.config, 0);
  EXPECT_EQ(dev_.target_pages(), 7u);
}

}  // namespace
}  // namespace ksbox::devices::balloon
