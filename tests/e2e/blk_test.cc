// End to end: raw image files given to the guest over virtio-blk
// (ksbox-vmm --disk), written and read in the guest by blk_probe
// (tests/e2e/blk_probe.cc) and checked from the host after the VM stopped
// (inside the nested harness when the host has no /dev/kvm).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/e2e/blk_pattern.h"
#include "tests/e2e/guest.h"
#include "tests/e2e/process.h"
#include "tests/e2e/sandbox.h"

namespace ksbox::test {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1 << 20;

class BlkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(guest_test_blocker(kInitramfs), "");
    const char* tmp = std::getenv("TMPDIR");
    std::string t = std::string(tmp && *tmp ? tmp : "/tmp") + "/ksbox-e2e-blk-XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
  }
  void TearDown() override {
    if (sb_ && sb_->vmm().running()) {
      const auto st = sb_->stop();
      EXPECT_EQ(st, 0) << "ksbox stop did not end the VM cleanly\n" << sb_->describe({});
    }
    sb_.reset();
    if (mounted_) ::umount2(mounted_->c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // A sparse image of `bytes` at `path`.
  static void make_image(const std::string& path, uint64_t bytes) {
    std::ofstream(path, std::ios::binary).close();
    fs::resize_file(path, bytes);
  }
  void boot(const std::vector<std::string>& vmm_args) {
    SandboxOptions opts;
    opts.initramfs = kInitramfs;
    opts.vcpus = 1;  // see FsTest::boot: 2-vCPU guests stall under nested TCG
    opts.memory_mib = 512;
    opts.vmm_args = vmm_args;
    sb_ = std::make_unique<Sandbox>(opts);
    auto r = sb_->exec({"true"});
    ASSERT_EQ(r.exit_code, 0) << "the guest never served an exec\n" << sb_->describe(r);
  }
  ProcessResult sh(const std::string& script) {
    return sb_->exec({"sh", "-c", script}, {"-u", "0"}, {.timeout = std::chrono::seconds(300)});
  }
  void stop() {
    const auto st = sb_->stop();
    ASSERT_EQ(st, 0) << "ksbox stop did not end the VM cleanly\n" << sb_->describe({});
  }

  static constexpr const char* kInitramfs = "initramfs-test.cpio.gz";
  std::string dir_;
  std::optional<std::string> mounted_;
  std::unique_ptr<Sandbox> sb_;
};

#define ASSERT_OK(r) ASSERT_EQ((r).exit_code, 0) << sb_->describe(r)

TEST_F(BlkTest, RandomWritesLandInTheImageByteForByte) {
  constexpr uint64_t kDisk = 64 * kMiB, kBlock = 4096;
  constexpr unsigned kWrites = 400, kSeed = 42;
  const std::string img = dir_ + "/disk.raw", img2 = dir_ + "/second.raw";
  make_image(img, kDisk);
  make_image(img2, 8 * kMiB);
  boot({"--blk-io", "io_uring", "--disk", img + ",serial=ksbox-disk-1", "--disk", img2});
  // The serial from GET_ID, the sizes, then the writes (read back in the
  // guest with O_DIRECT), then a discard of the first MiB.
  auto r = sh("cat /sys/block/vda/serial; echo; blk_probe size /dev/vda; blk_probe size /dev/vdb; "
              "blk_probe random /dev/vda " + std::to_string(kSeed) + " " + std::to_string(kWrites) + " " +
              std::to_string(kBlock) + " && blk_probe discard /dev/vda 0 1048576");
  ASSERT_OK(r);
  const auto writes = blk::random_writes(kSeed, kWrites, kBlock, kDisk);
  EXPECT_EQ(r.out.substr(0, r.out.find("ok ")), "ksbox-disk-1\n67108864\n8388608\n") << r.out;
  EXPECT_NE(r.out.find("ok 400 writes"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("ok\n")) << r.out;
  stop();

  std::string want(kDisk, '\0');
  for (const auto& w : writes) std::memcpy(want.data() + w.offset, w.data.data(), w.data.size());
  std::memset(want.data(), 0, kMiB);  // discarded
  const std::string got = read_file(img);
  ASSERT_EQ(got.size(), kDisk);
  size_t first_diff = 0;
  while (first_diff < kDisk && got[first_diff] == want[first_diff]) ++first_diff;
  EXPECT_EQ(first_diff, kDisk) << "the image differs from what the guest wrote at byte " << first_diff;
  // The discard punched a hole: the first MiB holds no data on the host.
  const int fd = ::open(img.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_GE(::lseek(fd, 0, SEEK_DATA), static_cast<off_t>(kMiB));
  ::close(fd);
  EXPECT_EQ(read_file(img2), std::string(8 * kMiB, '\0'));  // the other disk was left alone
}

TEST_F(BlkTest, HostDiskFullGivesTheGuestAnIoErrorAndTheVmmKeepsRunning) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root (run as root, as CI does)";
  const std::string small = dir_ + "/small";
  fs::create_directory(small);
  ASSERT_EQ(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=4m"), 0) << std::strerror(errno);
  mounted_ = small;
  const std::string img = small + "/disk.raw";
  make_image(img, 32 * kMiB);  // sparse: 32 MiB claimed, 4 MiB of room
  boot({"--blk-io", "sync", "--disk", img});
  auto r = sh("blk_probe fill /dev/vda 16");
  EXPECT_EQ(r.exit_code, 1) << sb_->describe(r);
  EXPECT_TRUE(r.out.starts_with("EIO at MiB ")) << r.out;
  const int at = std::atoi(r.out.c_str() + std::strlen("EIO at MiB "));
  EXPECT_GE(at, 2) << r.out;
  EXPECT_LE(at, 4) << r.out;
  // The VMM survived and still serves the guest; the disk still reads.
  r = sh("echo alive; dd if=/dev/vda bs=1M count=1 2>/dev/null | od -An -tx1 -N4");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "alive\n 5a 5a 5a 5a\n");
  EXPECT_TRUE(sb_->vmm().running());
}

TEST_F(BlkTest, ReadOnlyDiskRefusesWritesAndStaysUnchanged) {
  const std::string img = dir_ + "/base.raw";
  {
    std::string data(4 * kMiB, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 / 3);
    std::ofstream(img, std::ios::binary) << data;
  }
  const std::string before = read_file(img);
  boot({"--disk", img + ":ro"});
  // The guest kernel knows the disk is read-only (VIRTIO_BLK_F_RO) and
  // refuses writes itself (EPERM from Linux 6.1's block layer); the device's
  // own refusal (IOERR) is covered by the unit tests.
  auto r = sh("cat /sys/block/vda/ro; blk_probe fill /dev/vda 1; dd if=/dev/vda bs=1M count=4 2>/dev/null | md5sum");
  ASSERT_OK(r);
  const auto host_md5 = sb_->host_sh("md5sum < " + img);
  ASSERT_EQ(host_md5.exit_code, 0);
  EXPECT_EQ(r.out, "1\nEPERM at MiB 0\n" + host_md5.out) << r.out;
  stop();
  EXPECT_TRUE(read_file(img) == before) << "the read-only image changed";
}

}  // namespace
}  // namespace ksbox::test
