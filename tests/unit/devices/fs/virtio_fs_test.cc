// VirtioFs against a fake driver with both queues: FUSE requests on the
// request queue are answered, and FORGETs on the high-priority queue need
// no kick of their own: the driver is asked to kick only for a batch, and
// every request drains them first.
#include "devices/fs/virtio_fs.h"

#include <linux/fuse.h>
#include <linux/virtio_ring.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "tests/unit/devices/fs/fuse_test_client.h"
#include "tests/unit/devices/virtio/fake_driver.h"

namespace ksbox::devices::fs::testing {
namespace {

using virtio::testing::CountingInterrupt;
using virtio::testing::FakeDriver;

constexpr uint16_t kSize = 16;
// Rings of the high-priority queue at the fake driver's defaults, the
// request queue's above them; request and reply buffers in the high region.
constexpr uint64_t kReqDesc = 0x4000, kReqAvail = 0x5000, kReqUsed = 0x6000;
constexpr uint64_t kIn = virtio::testing::kHighStart, kOut = kIn + 0x4000;

class VirtioFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_.path() / "f", "x");
    dev_ = std::make_unique<VirtioFs>("t", dir_.path().string(), PassthroughOptions{}, IoEngineKind::kSync, poll_);
    ready(queues_[0], virtio::testing::kDescAddr, virtio::testing::kAvailAddr, virtio::testing::kUsedAddr);
    ready(queues_[1], kReqDesc, kReqAvail, kReqUsed);
    ASSERT_TRUE(dev_->activate({dev_->device_features(), std::span(queues_), &mem_, &irq_}));
    fuse_init_in ii{};
    ii.major = 7;
    ii.minor = 38;
    ii.flags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES;
    ASSERT_EQ(request(FUSE_INIT, 0, Args().add(ii)).error, 0);
  }
  void TearDown() override { dev_->reset(); }

  void ready(virtio::Queue& q, uint64_t desc, uint64_t avail, uint64_t used) {
    ASSERT_TRUE(q.set_size(kSize));
    q.set_desc_table(GuestAddress(desc));
    q.set_avail_ring(GuestAddress(avail));
    q.set_used_ring(GuestAddress(used));
    q.set_features(1ull << VIRTIO_RING_F_EVENT_IDX);
    ASSERT_EQ(q.set_ready(mem_, true), virtio::QueueConfigError::kOk);
  }
  // Writes header + args at kIn + slot * 0x400 into descriptor 2 * slot.
  uint16_t put(FakeDriver& d, uint16_t slot, uint32_t opcode, uint64_t nodeid, const Args& args, bool reply) {
    fuse_in_header h{};
    h.len = static_cast<uint32_t>(sizeof h + args.bytes.size());
    h.opcode = opcode;
    h.unique = ++unique_;
    h.nodeid = nodeid;
    std::vector<uint8_t> req(sizeof h);
    std::memcpy(req.data(), &h, sizeof h);
    req.insert(req.end(), args.bytes.begin(), args.bytes.end());
    const uint64_t at = kIn + 0x400ull * slot;
    EXPECT_TRUE(mem_.write_bytes(GuestAddress(at), req));
    const auto head = static_cast<uint16_t>(2 * slot);
    if (reply) {
      d.desc(head, at, h.len, VRING_DESC_F_NEXT, head + 1);
      d.desc(head + 1, kOut, 0x1000, VRING_DESC_F_WRITE);
    } else {
      d.desc(head, at, h.len);
    }
    d.publish(head);
    return head;
  }
  struct Answer {
    int error = 1;
    std::vector<uint8_t> body;
  };
  // A request on the request queue, kicked; its reply.
  Answer request(uint32_t opcode, uint64_t nodeid, const Args& args) {
    const uint16_t before = req_.used_idx();
    put(req_, static_cast<uint16_t>(req_slot_++ % 4), opcode, nodeid, args, true);
    dev_->process_queue(VirtioFs::kRequestQueue);
    Answer a;
    if (req_.used_idx() != before + 1) return a;
    fuse_out_header oh{};
    auto out = mem_.slice(GuestAddress(kOut), 0x1000);
    std::memcpy(&oh, out->data(), sizeof oh);
    a.error = oh.error;
    a.body.assign(out->begin() + sizeof oh, out->begin() + oh.len);
    return a;
  }
  void forget(uint64_t nodeid, uint16_t slot) {
    fuse_forget_in fi{};
    fi.nlookup = 1;
    put(hiprio_, static_cast<uint16_t>(4 + slot), FUSE_FORGET, nodeid, Args().add(fi), false);
  }
  uint64_t forgets_served() { return dev_->fuse_stats().ops[FUSE_FORGET].count; }

  std::chrono::microseconds poll_{};
  TempDir dir_;
  GuestMemory mem_ = virtio::testing::make_two_region_memory();
  std::array<virtio::Queue, 2> queues_{virtio::Queue(kSize), virtio::Queue(kSize)};
  FakeDriver hiprio_{mem_, kSize};
  FakeDriver req_{mem_, kSize, kReqDesc, kReqAvail, kReqUsed};
  CountingInterrupt irq_;
  std::unique_ptr<VirtioFs> dev_;
  uint64_t unique_ = 0;
  size_t req_slot_ = 0;
};

TEST_F(VirtioFsTest, ForgetsWaitForABatchOrTheNextRequest) {
  const Answer e = request(FUSE_LOOKUP, 1, Args().str("f"));
  ASSERT_EQ(e.error, 0);
  fuse_entry_out entry{};
  std::memcpy(&entry, e.body.data(), sizeof entry);
  const uint64_t node = entry.nodeid;
  ASSERT_EQ(request(FUSE_LOOKUP, 1, Args().str("f")).error, 0);  // two references

  // The first FORGET comes with a kick (the ring is new); after it the
  // driver is asked to kick again only when the ring is full.
  forget(node, 0);
  dev_->process_queue(VirtioFs::kHiprioQueue);
  EXPECT_EQ(forgets_served(), 1u);
  EXPECT_EQ(hiprio_.used_idx(), 1);
  EXPECT_EQ(hiprio_.avail_event(), 1 + kSize - 1);
  // The second waits in the ring, unkicked, until a request comes.
  forget(node, 1);
  EXPECT_EQ(forgets_served(), 1u);
  fuse_getattr_in gi{};
  const Answer a = request(FUSE_GETATTR, 1, Args().add(gi));
  EXPECT_EQ(a.error, 0);
  EXPECT_EQ(forgets_served(), 2u);
  EXPECT_EQ(hiprio_.used_idx(), 2);
  // Both references are gone: the node is unknown now.
  EXPECT_EQ(request(FUSE_GETATTR, node, Args().add(gi)).error, -ESTALE);
}

// The guest waiting for a reply wakes once, not once for the FORGETs the
// request drained and again for the reply.
TEST_F(VirtioFsTest, ARequestAndTheForgetsItDrainsShareOneInterrupt) {
  const Answer e = request(FUSE_LOOKUP, 1, Args().str("f"));
  ASSERT_EQ(e.error, 0);
  fuse_entry_out entry{};
  std::memcpy(&entry, e.body.data(), sizeof entry);
  // Both queues' callbacks on, as Linux's driver leaves them: an interrupt
  // is wanted for the next used buffer of either.
  hiprio_.set_used_event(hiprio_.used_idx());
  req_.set_used_event(req_.used_idx());
  forget(entry.nodeid, 0);
  const int before = irq_.used;
  fuse_getattr_in gi{};
  EXPECT_EQ(request(FUSE_GETATTR, 1, Args().add(gi)).error, 0);
  EXPECT_EQ(forgets_served(), 1u);
  EXPECT_EQ(hiprio_.used_idx(), 1);
  EXPECT_EQ(irq_.used - before, 1);
  // With only the FORGETs wanting one, the request still raises it.
  req_.set_used_event(static_cast<uint16_t>(req_.used_idx() + 5));
  hiprio_.set_used_event(hiprio_.used_idx());
  const Answer e2 = request(FUSE_LOOKUP, 1, Args().str("f"));  // the first FORGET dropped the node
  ASSERT_EQ(e2.error, 0);
  std::memcpy(&entry, e2.body.data(), sizeof entry);
  forget(entry.nodeid, 1);
  const int before2 = irq_.used;
  EXPECT_EQ(request(FUSE_GETATTR, 1, Args().add(gi)).error, 0);
  EXPECT_EQ(forgets_served(), 2u);
  EXPECT_EQ(hiprio_.used_idx(), 2);
  EXPECT_EQ(irq_.used - before2, 1);
  EXPECT_EQ(request(FUSE_GETATTR, entry.nodeid, Args().add(gi)).error, -ESTALE);
}

// With --fs-poll-us: after a request the device thread keeps watching the
// ring for the window, the driver told not to kick (avail_event a ring
// ahead); a request published meanwhile is answered with no kick. When the
// window passes with nothing new, kicks are wanted again.
class VirtioFsPollTest : public VirtioFsTest {
 protected:
  VirtioFsPollTest() { poll_ = std::chrono::seconds(1); }  // long: the test thread may be slow to run
};

TEST_F(VirtioFsPollTest, ARequestPublishedWhilePollingIsServedWithoutAKick) {
  fuse_getattr_in gi{};
  const uint16_t before = req_.used_idx();
  const uint64_t polled_before = dev_->requests_polled();
  put(req_, 0, FUSE_GETATTR, 1, Args().add(gi), true);
  uint16_t avail_event_while_polling = 0;
  bool second_answered = false;
  std::thread guest([&] {
    using Clock = std::chrono::steady_clock;
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    while (req_.used_idx() != before + 1 && Clock::now() < give_up) std::this_thread::yield();
    avail_event_while_polling = req_.avail_event();
    put(req_, 1, FUSE_GETATTR, 1, Args().add(gi), true);  // no process_queue(): no kick
    while (req_.used_idx() != before + 2 && Clock::now() < give_up) std::this_thread::yield();
    second_answered = req_.used_idx() == before + 2;
  });
  dev_->process_queue(VirtioFs::kRequestQueue);  // the kick of the first
  guest.join();
  EXPECT_EQ(avail_event_while_polling, static_cast<uint16_t>(before + 1 + kSize - 1)) << "kick only for a full ring";
  EXPECT_TRUE(second_answered);
  EXPECT_EQ(dev_->requests_polled() - polled_before, 1u);
  EXPECT_EQ(req_.avail_event(), before + 2) << "the window passed: kick for the next one again";
  const auto oh = mem_.read_obj<fuse_out_header>(GuestAddress(kOut));
  ASSERT_TRUE(oh);
  EXPECT_EQ(oh->error, 0);
  EXPECT_EQ(oh->unique, unique_);
}

// A guest that keeps a request in flight without a pause does not hold the
// device thread (and the lock the control socket's query takes) for good: a
// poll session ends after 20 windows, and the next request kicks.
class VirtioFsShortPollTest : public VirtioFsTest {
 protected:
  VirtioFsShortPollTest() { poll_ = std::chrono::milliseconds(5); }
};

TEST_F(VirtioFsShortPollTest, ABusyGuestDoesNotKeepTheDeviceThreadPolling) {
  using Clock = std::chrono::steady_clock;
  fuse_getattr_in gi{};
  const uint64_t polled_before = dev_->requests_polled();
  uint16_t expected = static_cast<uint16_t>(req_.used_idx() + 1);
  put(req_, 0, FUSE_GETATTR, 1, Args().add(gi), true);
  std::atomic<bool> device_returned{false};
  std::thread guest([&] {
    const auto give_up = Clock::now() + std::chrono::seconds(5);
    for (uint16_t slot = 1; !device_returned && Clock::now() < give_up;) {
      if (req_.used_idx() != expected) continue;
      put(req_, slot++ % 4, FUSE_GETATTR, 1, Args().add(gi), true);  // the next, unkicked
      ++expected;
    }
  });
  const auto start = Clock::now();
  dev_->process_queue(VirtioFs::kRequestQueue);
  const auto took = Clock::now() - start;
  device_returned = true;
  guest.join();
  EXPECT_LT(took, std::chrono::seconds(2)) << "20 windows of 5 ms, then the next request kicks";
  EXPECT_GE(dev_->requests_polled() - polled_before, 2u);
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
