// End to end: the guest boots from the default root file system
// (guest-image/rootfs/ as a read-only virtio-blk disk) with its own writable
// layer on a second disk (ksbox.root= / ksbox.overlay=, guest-image/agent/
// root_disk.h): the tools and agent CLIs run there, and what the guest writes
// survives a stop and a new boot with the same layer.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/e2e/guest.h"
#include "tests/e2e/guest_test.h"
#include "tests/e2e/process.h"
#include "tests/e2e/sandbox.h"

namespace ksbox::test {
namespace {

namespace fs = std::filesystem;

class RootDiskTest : public GuestTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(GuestTest::SetUp());
    ASSERT_TRUE(fs::exists(rootfs_)) << rootfs_ << " is missing: cmake --build build --target guest-rootfs";
    const char* tmp = std::getenv("TMPDIR");
    std::string t = std::string(tmp && *tmp ? tmp : "/tmp") + "/ksbox-e2e-rootdisk-XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
    // What the host makes for a new sandbox: a sparse ext4 file.
    layer_ = dir_ + "/layer.ext4";
    const auto r = run_process({"/usr/sbin/mkfs.ext4", "-q", "-F", "-m", "0", "-L", "ksbox-layer", layer_, "1G"});
    ASSERT_EQ(r.exit_code, 0) << "mkfs.ext4: " << r.err;
  }
  void TearDown() override {
    GuestTest::TearDown();
    sb_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // The agent from the initramfs switches to the disks before serving.
  void boot() {
    GuestTest::boot({.memory_mib = 1024,
                     .vmm_args = {"--disk", rootfs_ + ":ro", "--disk", layer_},
                     .cmdline = "ksbox.root=/dev/vda ksbox.overlay=/dev/vdb"});
  }
  // bash -c SCRIPT as the sandbox user (uid 1000).
  ProcessResult as_sandbox(const std::string& script) {
    return sb_->exec({"bash", "-c", script}, {"-u", "1000"}, {.timeout = std::chrono::seconds(600)});
  }
  void stop() {
    const auto st = sb_->stop();
    ASSERT_EQ(st, 0) << "ksbox stop did not end the VM cleanly\n" << sb_->describe({});
  }

  const std::string rootfs_ = guest_file("rootfs.ext4");
  std::string dir_, layer_;
};

#define ASSERT_OK(r) ASSERT_EQ((r).exit_code, 0) << sb_->describe(r)

TEST_F(RootDiskTest, ToolsAndAgentCLIsRunFromTheRootDisk) {
  ASSERT_NO_FATAL_FAILURE(boot());
  auto r = as_sandbox(
      "set -e; findmnt -no FSTYPE /; id -un; echo HOME=$HOME; git --version; node --version; "
      "python3 --version; claude --version; gemini --version; codex --version; sudo -n true && echo sudo-ok");
  ASSERT_OK(r);
  for (const char* want : {"overlay\n", "sandbox\n", "HOME=/home/sandbox\n", "git version 2.", "\nv22.",
                           "Python 3.11", "(Claude Code)", "codex-cli ", "sudo-ok\n"})
    EXPECT_NE(r.out.find(want), std::string::npos) << "no '" << want << "' in:\n" << r.out;
  // The base disk cannot be written, even by root.
  r = sb_->exec({"sh", "-c", "echo x > /dev/vda"}, {"-u", "0"});
  EXPECT_NE(r.exit_code, 0) << "root wrote to the read-only base\n" << sb_->describe(r);
}

TEST_F(RootDiskTest, TheWritableLayerKeepsFilesAcrossStopAndStart) {
  ASSERT_NO_FATAL_FAILURE(boot());
  ASSERT_OK(as_sandbox("echo kept > ~/note && sudo -n sh -c 'echo system > /etc/ksbox-e2e-marker'"));
  ASSERT_NO_FATAL_FAILURE(stop());
  // Written to the layer disk (overlayfs upper directory), not to a tmpfs.
  const auto host = run_process({"/usr/sbin/debugfs", "-R", "cat /upper/home/sandbox/note", layer_});
  EXPECT_EQ(host.out, "kept\n") << host.err;
  ASSERT_NO_FATAL_FAILURE(boot());
  const auto r = as_sandbox("cat ~/note /etc/ksbox-e2e-marker");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "kept\nsystem\n");
}

}  // namespace
}  // namespace ksbox::test
