// End to end: virtio-balloon in a 1 GiB test guest (inside the nested
// harness when the host has no /dev/kvm). The VMM's resident memory is read
// from /proc/<pid>/status on the host side of the VM.
//  - Free page reporting: memory the guest fills and frees again goes back
//    to the host (VmRSS falls), and the guest can use it again afterwards.
//  - The balloon target set over the control socket: the guest inflates to
//    it, and gives pages back (deflate on OOM) when it needs them.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/control_client.h"
#include "tests/e2e/guest.h"
#include "tests/e2e/guest_test.h"

namespace ksbox::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint64_t kGuestMib = 1024;
constexpr uint64_t kFillMib = 600;

// VmRSS of `pid` in MiB, or -1.
long rss_mib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  return -1;
}

// Polls `ok` every second until it holds or `timeout` passes.
bool wait_until(std::chrono::seconds timeout, const std::function<bool()>& ok) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ok()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1s);
  }
  return true;
}

class BalloonTest : public GuestTest {
 protected:
  void SetUp() override {
    GuestTest::SetUp();
    const char* tmp = std::getenv("TMPDIR");
    std::string t = std::string(tmp && *tmp ? tmp : "/tmp") + "/ksbox-e2e-balloon-XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
    SandboxOptions opts;
    opts.memory_mib = kGuestMib;
    opts.vmm_args = {"--control", control(), "--network", "user"};
    // Every device the VMM takes at once (4 shares, 4 disks, rng, vsock,
    // net): the balloon comes last, on I/O APIC pin 16, past the ISA lines.
    for (int i = 0; i < 4; ++i) {
      const std::string share = dir_ + "/share" + std::to_string(i), disk = dir_ + "/disk" + std::to_string(i);
      std::filesystem::create_directory(share);
      std::ofstream(disk).close();
      std::filesystem::resize_file(disk, 8 << 20);
      opts.vmm_args.insert(opts.vmm_args.end(),
                           {"--share", "s" + std::to_string(i) + "=" + share, "--disk", disk});
    }
    boot(opts);
  }
  void TearDown() override {
    GuestTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string control() const { return dir_ + "/ctl.sock"; }
  long rss() { return rss_mib(sb_->vmm().pid()); }
  // A root shell command in the guest, with minutes to run under emulation.
  ProcessResult sh(const std::string& script) {
    return sb_->exec({"sh", "-c", script}, {"-u", "0"}, {.timeout = std::chrono::seconds(400)});
  }
  // One request on the VMM's control socket; its JSON reply (null on failure).
  json ask(const json& request) { return control_request(control(), request); }

  // A tmpfs big enough for the fills (the default one is half the RAM).
  void mount_scratch() {
    auto r = sh("mkdir -p /mnt/fill && mount -t tmpfs -o size=900m fill /mnt/fill");
    ASSERT_EQ(r.exit_code, 0) << sb_->describe(r);
  }

  std::string dir_;
};

TEST_F(BalloonTest, MemoryTheGuestFreesGoesBackToTheHostAndIsUsableAgain) {
  auto r = sh("ls /sys/bus/virtio/devices | wc -l; ls /sys/block | grep -c '^vd'; grep -c ' virtio' /proc/interrupts");
  EXPECT_EQ(r.out, "12\n4\n12\n") << "every device probed, each with its own interrupt line\n" << sb_->describe(r);
  mount_scratch();
  // Boot's own garbage (the initramfs image, ...) is reported ~2 s after the
  // driver starts: let that settle first.
  std::this_thread::sleep_for(5s);
  const long before = rss();
  ASSERT_GT(before, 0);
  r = sh("dd if=/dev/zero of=/mnt/fill/a bs=1M count=" + std::to_string(kFillMib) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << sb_->describe(r);
  const long filled = rss();
  // The guest's writes are the VMM's memory: it grew by about the fill.
  EXPECT_GE(filled, before + static_cast<long>(kFillMib) * 8 / 10) << "before " << before << " MiB";

  r = sh("rm /mnt/fill/a");
  ASSERT_EQ(r.exit_code, 0) << sb_->describe(r);
  // Linux reports free 2 MiB blocks about 2 s after they were freed.
  long now = filled;
  const bool fell = wait_until(120s, [&] {
    now = rss();
    return now <= filled - static_cast<long>(kFillMib) * 7 / 10;
  });
  EXPECT_TRUE(fell) << "VmRSS " << before << " MiB before the fill, " << filled << " filled, " << now
                    << " after it was freed\n"
                    << ask({{"cmd", "balloon"}}).dump();
  std::printf("VmRSS: %ld MiB before the %llu MiB fill, %ld filled, %ld after it was freed\n", before,
              static_cast<unsigned long long>(kFillMib), filled, now);
  const json b = ask({{"cmd", "balloon"}});
  ASSERT_EQ(b["ok"], true) << b.dump();
  std::printf("balloon: %s\n", b.dump().c_str());
  EXPECT_GE(b["reported_mib"].get<long>(), static_cast<long>(kFillMib) * 7 / 10) << b.dump();
  EXPECT_EQ(b["refused"], 0) << b.dump();
  EXPECT_EQ(b["host_errors"], 0) << b.dump();

  // The freed memory serves the guest again, with its contents intact: a
  // pattern written over it reads back the same.
  r = sh("dd if=/dev/urandom of=/tmp/p bs=1M count=1 2>/dev/null && set -- && "
         "for i in $(seq 300); do set -- \"$@\" /tmp/p; done && cat \"$@\" > /mnt/fill/b && "
         "a=$(md5sum < /mnt/fill/b) && b=$(cat \"$@\" | md5sum) && echo \"$a $b\" && [ \"$a\" = \"$b\" ]");
  EXPECT_EQ(r.exit_code, 0) << sb_->describe(r);
  EXPECT_GE(rss(), now + 200) << "the guest's new data is in host memory again";
}

TEST_F(BalloonTest, GuestInflatesToTheTargetAndDeflatesRatherThanRunOutOfMemory) {
  json b = ask({{"cmd", "balloon"}});
  ASSERT_EQ(b["ok"], true) << b.dump();
  EXPECT_EQ(b["target_mib"], 0);
  EXPECT_EQ(ask({{"cmd", "balloon"}, {"target_mib", kGuestMib + 1}})["ok"], false);

  b = ask({{"cmd", "balloon"}, {"target_mib", 768}});
  ASSERT_EQ(b["ok"], true) << b.dump();
  EXPECT_EQ(b["target_mib"], 768);
  ASSERT_TRUE(wait_until(180s, [&] {
    b = ask({{"cmd", "balloon"}});
    return b["actual_mib"].get<long>() >= 760;
  })) << b.dump();
  EXPECT_GE(b["inflated_mib"].get<long>(), 760) << b.dump();
  // Each reply carries the statistics the guest sent for the request
  // before it (possibly from before the inflation): poll until they are new.
  EXPECT_TRUE(wait_until(60s, [&] {
    b = ask({{"cmd", "balloon"}});
    return b["stats"].contains("free-memory-mib") && b["stats"]["free-memory-mib"].get<long>() < 300;
  })) << "the balloon holds the rest\n"
      << b.dump();
  std::printf("inflated: %s\n", b.dump().c_str());

  // The guest needs more than is left outside the balloon: with
  // DEFLATE_ON_OOM it takes pages back instead of killing the writer.
  mount_scratch();
  auto r = sh("dd if=/dev/zero of=/mnt/fill/a bs=1M count=400 2>&1 && rm /mnt/fill/a && "
              "! dmesg | grep -i 'killed process'");
  EXPECT_EQ(r.exit_code, 0) << sb_->describe(r);
  b = ask({{"cmd", "balloon"}});
  EXPECT_LE(b["actual_mib"].get<long>(), 768 - 100) << b.dump();
  EXPECT_GE(b["deflated_mib"].get<long>(), 100) << b.dump();
  std::printf("after the guest needed memory: %s\n", b.dump().c_str());
}

}  // namespace
}  // namespace ksbox::test
