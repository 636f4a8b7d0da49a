#include "vmm/vm_control.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <thread>
#include <vector>

namespace ksbox {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(VmControlTest, StartsRunning) {
  VmControl c;
  EXPECT_FALSE(c.stopping());
  EXPECT_FALSE(c.status().has_value());
  EXPECT_FALSE(c.panic_deadline().has_value());
  EXPECT_GE(c.event_fd(), 0);
  EXPECT_FALSE(readable(c.event_fd()));
}

TEST(VmControlTest, FirstRequestStopWins) {
  VmControl c;
  c.request_stop({kExitSignalBase + 15, "stopped by signal"});
  c.request_stop({kExitGuestCrash, "later"});
  c.guest_reset();
  EXPECT_TRUE(c.stopping());
  ASSERT_TRUE(c.status().has_value());
  EXPECT_EQ(c.status()->code, kExitSignalBase + 15);
  EXPECT_EQ(c.status()->reason, "stopped by signal");
}

TEST(VmControlTest, EventFdBecomesReadableAfterStop) {
  VmControl c;
  EXPECT_FALSE(readable(c.event_fd()));
  c.request_stop({kExitGuestReset, "bye"});
  EXPECT_TRUE(readable(c.event_fd()));
}

TEST(VmControlTest, GuestResetIsACleanStop) {
  VmControl c;
  c.guest_reset();
  ASSERT_TRUE(c.status().has_value());
  EXPECT_EQ(c.status()->code, kExitGuestReset);
  EXPECT_EQ(c.status()->code, 0);
  EXPECT_TRUE(readable(c.event_fd()));
}

TEST(VmControlTest, GuestResetAfterAPanicIsACrash) {
  VmControl c;
  const auto before = std::chrono::steady_clock::now();
  c.guest_panic("Attempted to kill init!", false);
  EXPECT_FALSE(c.stopping()) << "a started panic waits for its trace or the grace period";
  ASSERT_TRUE(c.panic_deadline().has_value());
  EXPECT_GE(*c.panic_deadline(), before + VmControl::kPanicGrace);
  EXPECT_LE(*c.panic_deadline(), std::chrono::steady_clock::now() + VmControl::kPanicGrace);

  c.guest_reset();
  ASSERT_TRUE(c.status().has_value());
  EXPECT_EQ(c.status()->code, kExitGuestCrash);
  EXPECT_EQ(c.status()->code, 3);
  EXPECT_NE(c.status()->reason.find("Attempted to kill init!"), std::string::npos) << c.status()->reason;
}

TEST(VmControlTest, EndedPanicStopsAtOnce) {
  VmControl c;
  c.guest_panic("oops", true);
  EXPECT_TRUE(c.stopping());
  ASSERT_TRUE(c.status().has_value());
  EXPECT_EQ(c.status()->code, kExitGuestCrash);
  EXPECT_NE(c.status()->reason.find("oops"), std::string::npos);
  EXPECT_TRUE(readable(c.event_fd()));
}

TEST(VmControlTest, FinishPanic) {
  VmControl c;
  c.finish_panic();  // no panic seen: nothing happens
  EXPECT_FALSE(c.stopping());
  EXPECT_FALSE(readable(c.event_fd()));

  c.guest_panic("VFS: Unable to mount root fs", false);
  const auto deadline = c.panic_deadline();
  c.guest_panic("another", false);  // the first panic's deadline stays
  EXPECT_EQ(c.panic_deadline(), deadline);
  c.finish_panic();
  EXPECT_TRUE(c.stopping());
  ASSERT_TRUE(c.status().has_value());
  EXPECT_EQ(c.status()->code, kExitGuestCrash);
  EXPECT_NE(c.status()->reason.find("VFS: Unable to mount root fs"), std::string::npos);
  EXPECT_TRUE(readable(c.event_fd()));
}

TEST(VmControlTest, ConcurrentStopsPickExactlyOne) {
  VmControl c;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&c, i] { c.request_stop({100 + i, "t"}); });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(c.status().has_value());
  EXPECT_GE(c.status()->code, 100);
  EXPECT_LT(c.status()->code, 108);
  // The eventfd counter is written once per winning stop only.
  uint64_t n = 0;
  ASSERT_EQ(::read(c.event_fd(), &n, sizeof n), static_cast<ssize_t>(sizeof n));
  EXPECT_EQ(n, 1u);
}


// A stand-in vCPU: counts "guest runs" between parks, as run_vcpu does.
struct FakeVcpu {
  explicit FakeVcpu(VmControl& c) : ctl(c), thread([this] {
    while (!ctl.stopping()) {
      ctl.park_while_paused();
      runs.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }) {}
  ~FakeVcpu() { thread.join(); }
  VmControl& ctl;
  std::atomic<uint64_t> runs{0};
  std::thread thread;
};

TEST(VmControlPause, ParksEveryVcpuUntilResumed) {
  VmControl ctl;
  std::atomic<int> kicks{0};
  ctl.set_vcpu_kicker(2, [&] { kicks.fetch_add(1); });
  {
    FakeVcpu a(ctl), b(ctl);
    ASSERT_TRUE(ctl.pause_until(VmControl::Clock::now() + std::chrono::seconds(30), std::chrono::seconds(5)));
    EXPECT_EQ(kicks.load(), 1);
    const uint64_t ra = a.runs.load(), rb = b.runs.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(a.runs.load(), ra);
    EXPECT_EQ(b.runs.load(), rb);
    ctl.resume();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_GT(a.runs.load(), ra);
    ctl.request_stop({kExitGuestReset, "done"});
  }
}

TEST(VmControlPause, TheLeaseEndsThePauseByItself) {
  VmControl ctl;
  ctl.set_vcpu_kicker(1, [] {});
  FakeVcpu v(ctl);
  ASSERT_TRUE(ctl.pause_until(VmControl::Clock::now() + std::chrono::milliseconds(100), std::chrono::seconds(5)));
  const uint64_t r = v.runs.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_GT(v.runs.load(), r) << "still paused after the lease";
  ctl.request_stop({kExitGuestReset, "done"});
}

TEST(VmControlPause, StopReleasesParkedVcpusAndAPauseWithoutVcpusReportsFailure) {
  VmControl ctl;
  ctl.set_vcpu_kicker(1, [] {});
  {
    FakeVcpu v(ctl);
    ASSERT_TRUE(ctl.pause_until(VmControl::Clock::now() + std::chrono::hours(1), std::chrono::seconds(5)));
    ctl.request_stop({kExitGuestReset, "done"});
  }  // joins: the parked thread left
  VmControl lonely;
  lonely.set_vcpu_kicker(1, [] {});
  EXPECT_FALSE(lonely.pause_until(VmControl::Clock::now() + std::chrono::seconds(1), std::chrono::milliseconds(50)));
}
}  // namespace
}  // namespace ksbox
