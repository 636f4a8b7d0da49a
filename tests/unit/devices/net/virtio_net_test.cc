// virtio-net against a fake driver (rings in a real GuestMemory) and a fake
// backend that records what the device sends.
#include "devices/net/virtio_net.h"

#include <gtest/gtest.h>

#include <linux/virtio_ids.h>

#include <cstring>
#include <atomic>
#include <numeric>
#include <thread>

#include "test_helpers.h"
#include "tests/unit/devices/virtio/fake_driver.h"

namespace ksbox::devices::net {
namespace {

using virtio::testing::FakeDriver;

constexpr uint16_t kSize = 8;
// RX rings at the fake driver's defaults; TX rings after them; buffers from 0x8000.
constexpr uint64_t kTxDesc = 0x4000, kTxAvail = 0x5000, kTxUsed = 0x6000;
constexpr uint64_t kBuf = 0x8000;
constexpr MacAddress kMac{0x02, 0x6b, 0x73, 0x62, 0x78, 0x01};

class FakeBackend : public NetBackend {
 public:
  void start(FrameSink& s) override { sink = &s; }
  bool can_send() override { return writable; }
  void send_frame(std::span<const uint8_t> f) override { sent.emplace_back(f.begin(), f.end()); }
  FrameSink* sink = nullptr;
  bool writable = true;
  std::vector<std::vector<uint8_t>> sent;
};

class CountingInterrupt : public virtio::Interrupt {
 public:
  void signal_used_queue(uint16_t q) override { ++used[q]; }
  void signal_config_change() override {}
  void signal_needs_reset() override { ++needs_reset; }
  int used[2] = {0, 0};
  int needs_reset = 0;
};

std::vector<uint8_t> frame_of(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = static_cast<uint8_t>(seed + i * 7);
  return f;
}

class VirtioNetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = std::make_unique<FakeBackend>();
    backend_ = b.get();
    dev_ = std::make_unique<VirtioNet>(kMac, 1500, std::move(b));
  }
  void activate(uint64_t features) {
    features_ = features;
    for (auto& q : queues_) {
      ASSERT_TRUE(q.set_size(kSize));
      q.set_features(features);
    }
    ASSERT_TRUE(queues_[0].set_desc_table(GuestAddress(virtio::testing::kDescAddr)));
    ASSERT_TRUE(queues_[0].set_avail_ring(GuestAddress(virtio::testing::kAvailAddr)));
    ASSERT_TRUE(queues_[0].set_used_ring(GuestAddress(virtio::testing::kUsedAddr)));
    ASSERT_TRUE(queues_[1].set_desc_table(GuestAddress(kTxDesc)));
    ASSERT_TRUE(queues_[1].set_avail_ring(GuestAddress(kTxAvail)));
    ASSERT_TRUE(queues_[1].set_used_ring(GuestAddress(kTxUsed)));
    for (auto& q : queues_) ASSERT_EQ(q.set_ready(mem_, true), virtio::QueueConfigError::kOk);
    ASSERT_TRUE(dev_->activate({features, std::span(queues_), &mem_, &irq_}));
  }
  void activate_all() { activate(dev_->device_features()); }
  std::vector<uint8_t> guest(uint64_t addr, size_t len) {
    auto s = mem_.slice(GuestAddress(addr), len);
    return s ? std::vector<uint8_t>(s->begin(), s->end()) : std::vector<uint8_t>{};
  }
  void put(uint64_t addr, std::span<const uint8_t> bytes) { ASSERT_TRUE(mem_.write_bytes(GuestAddress(addr), bytes)); }
  // Posts `count` RX buffers of `len` bytes each, one descriptor each.
  void post_rx(uint16_t first, uint16_t count, uint32_t len, uint64_t at = kBuf) {
    for (uint16_t i = 0; i < count; ++i) {
      rx_.desc(static_cast<uint16_t>(first + i), at + uint64_t{i} * len, len, VRING_DESC_F_WRITE);
      rx_.publish(static_cast<uint16_t>(first + i));
    }
  }
  // One TX chain: the header in one descriptor, the frame in the next.
  void send_tx(uint16_t head, const NetHeader& h, std::span<const uint8_t> frame, uint64_t at = kBuf) {
    put(at, encode(h));
    put(at + 64, frame);
    tx_.desc(head, at, kNetHeaderSize, VRING_DESC_F_NEXT, static_cast<uint16_t>(head + 1));
    tx_.desc(static_cast<uint16_t>(head + 1), at + 64, static_cast<uint32_t>(frame.size()));
    tx_.publish(head);
  }
  void deliver(std::span<const uint8_t> frame) { backend_->sink->receive_frame(frame); }

  GuestMemory mem_ = virtio::testing::make_two_region_memory();
  std::array<virtio::Queue, 2> queues_{virtio::Queue(kSize), virtio::Queue(kSize)};
  FakeDriver rx_{mem_, kSize};
  FakeDriver tx_{mem_, kSize, kTxDesc, kTxAvail, kTxUsed};
  CountingInterrupt irq_;
  FakeBackend* backend_ = nullptr;
  std::unique_ptr<VirtioNet> dev_;
  uint64_t features_ = 0;
};

TEST_F(VirtioNetTest, OffersNetFeaturesWithTwoQueues) {
  EXPECT_EQ(dev_->device_type(), uint32_t{VIRTIO_ID_NET});
  EXPECT_EQ(dev_->queue_max_sizes().size(), 2u);
  const uint64_t f = dev_->device_features();
  for (unsigned bit : {32u /* VERSION_1 */, kFeatureCsum, kFeatureGuestCsum, kFeatureMtu, kFeatureMac,
                       kFeatureMrgRxbuf, kFeatureStatus})
    EXPECT_TRUE(f & virtio::feature_bit(bit)) << bit;
  // No segmentation offload (GUEST_TSO4 7, HOST_TSO4 11), no control queue (17).
  for (unsigned bit : {7u, 11u, 17u}) EXPECT_FALSE(f & virtio::feature_bit(bit)) << bit;
}

TEST_F(VirtioNetTest, ConfigSpaceHasMacLinkUpAndMtuAndIsReadOnly) {
  ASSERT_EQ(dev_->config_size(), 12u);
  uint8_t cfg[12];
  dev_->read_config(0, cfg);
  EXPECT_EQ(0, std::memcmp(cfg, kMac.data(), 6));
  EXPECT_EQ(cfg[6], kStatusLinkUp);
  EXPECT_EQ(cfg[8], 1);  // one queue pair
  EXPECT_EQ(cfg[10] | cfg[11] << 8, 1500);
  uint8_t two[2];
  dev_->read_config(10, two);
  EXPECT_EQ(two[0] | two[1] << 8, 1500);
  const uint8_t junk[6] = {9, 9, 9, 9, 9, 9};
  dev_->write_config(0, junk);
  dev_->read_config(0, cfg);
  EXPECT_EQ(0, std::memcmp(cfg, kMac.data(), 6));
  EXPECT_KSBOX_ERROR(VirtioNet(kMac, 67, std::make_unique<FakeBackend>()), "MTU");
  EXPECT_KSBOX_ERROR(VirtioNet(kMac, kMaxMtu + 1, std::make_unique<FakeBackend>()), "MTU");
}

TEST_F(VirtioNetTest, TxFrameReachesTheBackendWithItsChecksumCompleted) {
  activate_all();
  auto frame = frame_of(100);
  NetHeader h;
  h.flags = kHdrNeedsCsum;
  h.csum_start = 34;
  h.csum_offset = 6;
  send_tx(0, h, frame);
  dev_->process_queue(VirtioNet::kTxQueue);
  ASSERT_EQ(backend_->sent.size(), 1u);
  const auto& out = backend_->sent[0];
  ASSERT_EQ(out.size(), frame.size());
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 40, frame.begin()));  // before the field: untouched
  // The field held the pseudo-header sum: with it, the range now sums right.
  const uint16_t pseudo = static_cast<uint16_t>(frame[40] << 8 | frame[41]);
  EXPECT_EQ(ones_complement_sum(std::span(out).subspan(34), pseudo), 0xffff);
  ASSERT_EQ(tx_.used_idx(), 1);
  EXPECT_EQ(tx_.used_elem(0).len, 0u);
  EXPECT_EQ(irq_.used[VirtioNet::kTxQueue], 1);
  EXPECT_EQ(dev_->stats().tx_frames, 1u);
  EXPECT_EQ(dev_->stats().tx_bytes, 100u);
}

TEST_F(VirtioNetTest, MalformedTxChainsAreRefusedCountedAndCompleted) {
  activate_all();
  tx_.desc(0, kBuf, 64, VRING_DESC_F_NEXT, 0);  // loops to itself
  tx_.publish(0);
  NetHeader gso;
  gso.gso_type = 1;
  send_tx(2, gso, frame_of(60), kBuf + 0x1000);
  tx_.desc(4, kBuf + 0x2000, 8);  // shorter than a header
  tx_.publish(4);
  tx_.desc(5, virtio::testing::kLowEnd - 16, 64);  // runs into the gap between regions
  tx_.publish(5);
  send_tx(6, {}, frame_of(60));  // and a good one after them
  dev_->process_queue(VirtioNet::kTxQueue);
  EXPECT_EQ(tx_.used_idx(), 5);
  ASSERT_EQ(backend_->sent.size(), 1u);
  const auto s = dev_->stats();
  EXPECT_EQ(s.tx_refusals(TxRefusal::kMalformedChain), 2u);
  EXPECT_EQ(s.tx_refusals(TxRefusal::kGsoNotOffered), 1u);
  EXPECT_EQ(s.tx_refusals(TxRefusal::kShortPacket), 1u);
  EXPECT_EQ(irq_.needs_reset, 0);
}

TEST_F(VirtioNetTest, TxWaitsWhileTheBackendIsFull) {
  activate_all();
  backend_->writable = false;
  send_tx(0, {}, frame_of(60));
  dev_->process_queue(VirtioNet::kTxQueue);
  EXPECT_EQ(tx_.used_idx(), 0);
  EXPECT_TRUE(backend_->sent.empty());
  backend_->writable = true;
  backend_->sink->backend_writable();
  EXPECT_EQ(tx_.used_idx(), 1);
  EXPECT_EQ(backend_->sent.size(), 1u);
}

TEST_F(VirtioNetTest, RxFrameIsMergedAcrossBuffersWithNumBuffers) {
  activate_all();
  post_rx(0, 4, 1024);
  const auto frame = frame_of(2500);
  deliver(frame);
  // 12 + 2500 bytes: 1024 + 1024 + 464.
  ASSERT_EQ(rx_.used_idx(), 3);
  EXPECT_EQ(rx_.used_elem(0).len, 1024u);
  EXPECT_EQ(rx_.used_elem(1).len, 1024u);
  EXPECT_EQ(rx_.used_elem(2).len, 464u);
  const auto hdr = decode(std::span<const uint8_t, kNetHeaderSize>(guest(kBuf, kNetHeaderSize)));
  EXPECT_EQ(hdr.num_buffers, 3);
  EXPECT_EQ(hdr.flags, kHdrDataValid);
  EXPECT_EQ(guest(kBuf + kNetHeaderSize, frame.size()), frame);  // the buffers are contiguous here
  EXPECT_EQ(irq_.used[VirtioNet::kRxQueue], 1);
  // The fourth buffer waits for the next frame.
  deliver(frame_of(100, 9));
  ASSERT_EQ(rx_.used_idx(), 4);
  EXPECT_EQ(rx_.used_elem(3).id, 3u);
  EXPECT_EQ(rx_.used_elem(3).len, 112u);
  EXPECT_EQ(guest(kBuf + 3 * 1024 + kNetHeaderSize, 100), frame_of(100, 9));
  EXPECT_EQ(dev_->stats().rx_frames, 2u);
}

// The guest's driver polls the used ring while the device fills it. A packet
// spread over three buffers must appear all at once: a driver that finds
// num_buffers = 3 but fewer used elements drops the packet. A second thread
// watches the used idx as a polling driver would; it may only ever see whole
// packets. (It can miss a bad moment, never invent one.)
TEST_F(VirtioNetTest, RxPacketBuffersArePublishedTogether) {
  activate_all();
  const auto frame = frame_of(40000);  // big buffers widen the moments a bug would expose
  auto* idx_ptr = mem_.slice(GuestAddress(virtio::testing::kUsedAddr + 2), 2)->data();
  std::atomic_ref<uint16_t> used_idx(*reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(idx_ptr)));
  std::atomic<bool> done{false};
  std::atomic<uint64_t> partial{0}, seen{0};
  std::thread watcher([&] {
    while (!done.load(std::memory_order_relaxed)) {
      if (used_idx.load(std::memory_order_acquire) % 3 != 0) partial.fetch_add(1);
      seen.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (seen.load() == 0) std::this_thread::yield();
  constexpr int kPackets = 5000;
  for (int i = 0; i < kPackets; ++i) {
    post_rx(0, 3, 16384, virtio::testing::kHighStart);
    deliver(frame);
  }
  done = true;
  watcher.join();
  EXPECT_EQ(dev_->stats().rx_frames, uint64_t{kPackets});
  EXPECT_EQ(rx_.used_idx(), static_cast<uint16_t>(3 * kPackets));
  EXPECT_EQ(partial.load(), 0u) << "the driver could see part of a packet (" << seen.load() << " looks)";
}

TEST_F(VirtioNetTest, RxWithoutMergeableBuffersUsesOneBufferAndDropsWhatDoesNotFit) {
  activate(dev_->device_features() & ~virtio::feature_bit(kFeatureMrgRxbuf));
  post_rx(0, 1, 1024);
  deliver(frame_of(2000));  // never fits a 1024-byte buffer
  EXPECT_EQ(rx_.used_idx(), 0);
  EXPECT_EQ(dev_->stats().rx_dropped_too_big, 1u);
  deliver(frame_of(500));
  ASSERT_EQ(rx_.used_idx(), 1);
  EXPECT_EQ(rx_.used_elem(0).len, 512u);
  EXPECT_EQ(decode(std::span<const uint8_t, kNetHeaderSize>(guest(kBuf, kNetHeaderSize))).num_buffers, 1);
}

TEST_F(VirtioNetTest, RxFramesWaitForBuffersInOrder) {
  activate_all();
  deliver(frame_of(300, 1));
  deliver(frame_of(300, 2));
  EXPECT_EQ(rx_.used_idx(), 0);
  post_rx(0, 2, 2048);
  dev_->process_queue(VirtioNet::kRxQueue);
  ASSERT_EQ(rx_.used_idx(), 2);
  EXPECT_EQ(guest(kBuf + kNetHeaderSize, 300), frame_of(300, 1));
  EXPECT_EQ(guest(kBuf + 2048 + kNetHeaderSize, 300), frame_of(300, 2));
}

TEST_F(VirtioNetTest, RxBacklogIsBounded) {
  activate_all();
  for (size_t i = 0; i < VirtioNet::kMaxBacklogFrames + 10; ++i) deliver(frame_of(60));
  EXPECT_EQ(dev_->stats().rx_dropped_backlog, 10u);
}

TEST_F(VirtioNetTest, BadRxChainsAreCompletedEmptyAndCounted) {
  activate_all();
  rx_.desc(0, kBuf, 8, VRING_DESC_F_WRITE);  // no room for the header
  rx_.publish(0);
  rx_.desc(1, kBuf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);  // loop
  rx_.publish(1);
  rx_.desc(2, kBuf, 256, 0);  // read-only
  rx_.publish(2);
  post_rx(3, 1, 512);
  deliver(frame_of(100));
  ASSERT_EQ(rx_.used_idx(), 4);
  for (uint16_t i = 0; i < 3; ++i) EXPECT_EQ(rx_.used_elem(i).len, 0u) << i;
  EXPECT_EQ(rx_.used_elem(3).len, 112u);
  EXPECT_EQ(dev_->stats().rx_refused_chains, 3u);
}

TEST_F(VirtioNetTest, FrameLargerThanTheWholeRingIsDropped) {
  activate_all();
  post_rx(0, kSize, 64);  // 512 bytes in all
  deliver(frame_of(1000));
  EXPECT_EQ(dev_->stats().rx_dropped_too_big, 1u);
  deliver(frame_of(100));  // the ring's buffers still serve frames that fit
  ASSERT_EQ(rx_.used_idx(), 2);
  EXPECT_EQ(decode(std::span<const uint8_t, kNetHeaderSize>(guest(kBuf, kNetHeaderSize))).num_buffers, 2);
}

TEST_F(VirtioNetTest, BrokenRingAsksForResetAndFramesAreDroppedUntilThen) {
  activate_all();
  rx_.desc(0, kBuf, 64, VRING_DESC_F_WRITE);
  rx_.publish(kSize + 1);  // head out of range
  deliver(frame_of(60));
  EXPECT_EQ(irq_.needs_reset, 1);
  deliver(frame_of(60));
  EXPECT_EQ(dev_->stats().rx_dropped_inactive, 1u);
  dev_->reset();
  deliver(frame_of(60));
  EXPECT_EQ(dev_->stats().rx_dropped_inactive, 2u);
  dev_->process_queue(VirtioNet::kTxQueue);  // ignored after reset
}

}  // namespace
}  // namespace ksbox::devices::net
