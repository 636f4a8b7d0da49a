// The kernel command-line words that make the agent boot from a root disk
// (guest-image/agent/root_disk.h). The command line comes from the host, but
// its values end up as mount sources: anything but /dev/NAME or serial:ID
// is refused. Disks named by serial are looked up in a fake /sys/block.
#include "guest-image/agent/root_disk.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace ksbox::agent {
namespace {

TEST(RootDiskTest, NoRootWordMeansStayInTheInitramfs) {
  std::string error;
  EXPECT_FALSE(parse_root_disk("console=ttyS0 reboot=k panic=1\n", &error));
  EXPECT_EQ(error, "");
  EXPECT_FALSE(parse_root_disk("", &error));
  EXPECT_EQ(error, "");
  EXPECT_FALSE(parse_root_disk("root=/dev/vda ksbox.rootx=/dev/vda", &error));
  EXPECT_EQ(error, "");
}

TEST(RootDiskTest, BaseAndOverlay) {
  std::string error;
  const auto d = parse_root_disk("console=ttyS0 ksbox.root=/dev/vda ksbox.overlay=/dev/vdb panic=1\n", &error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->base, "/dev/vda");
  EXPECT_EQ(d->overlay, "/dev/vdb");
}

TEST(RootDiskTest, BaseAloneHasATmpfsLayer) {
  std::string error;
  const auto d = parse_root_disk("ksbox.root=/dev/vdc", &error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->base, "/dev/vdc");
  EXPECT_EQ(d->overlay, "");
}

TEST(RootDiskTest, RefusesWhatIsNotADeviceName) {
  for (const char* line : {"ksbox.root=", "ksbox.root=vda", "ksbox.root=/dev/", "ksbox.root=/dev/../etc/x",
                           "ksbox.root=/dev/vda/x", "ksbox.root=/tmp/disk", "ksbox.root=/dev/vda,ro",
                           "ksbox.root=/dev/vda ksbox.overlay=/proc/self",
                           "ksbox.root=/dev/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ksbox.root=serial:",
                           "ksbox.root=serial:a/b", "ksbox.root=serial:../x", "ksbox.root=serial:abcdefghijklmnopqrstu",
                           "ksbox.root=Serial:x", "ksbox.root=serial:a,b", "ksbox.root=serial:x ksbox.overlay=serial:x",
                           "ksbox.root=/dev/vda ksbox.overlay=/dev/vda"}) {
    std::string error;
    EXPECT_FALSE(parse_root_disk(line, &error)) << line;
    EXPECT_NE(error, "") << line;
  }
}

TEST(RootDiskTest, TheLastWordCountsAndAnOverlayNeedsABase) {
  std::string error;
  const auto d = parse_root_disk("ksbox.root=/dev/vda ksbox.root=/dev/vdc", &error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->base, "/dev/vdc");
  EXPECT_FALSE(parse_root_disk("ksbox.overlay=/dev/vdb", &error));
  EXPECT_NE(error.find("without ksbox.root"), std::string::npos) << error;
}

TEST(RootDiskTest, DisksBySerial) {
  std::string error;
  const auto d = parse_root_disk("ksbox.root=serial:ksbox-root ksbox.overlay=serial:ksbox-layer.2", &error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->base, "serial:ksbox-root");
  EXPECT_EQ(d->overlay, "serial:ksbox-layer.2");
  // 20 bytes (VIRTIO_BLK_ID_BYTES) fit.
  EXPECT_TRUE(parse_root_disk("ksbox.root=serial:abcdefghijklmnopqrst", &error)) << error;
}

class FakeSysBlock : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "sysblock-XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void disk(const std::string& name, const std::string& serial_file_content) {
    std::filesystem::create_directories(dir_ + "/" + name);
    std::ofstream(dir_ + "/" + name + "/serial") << serial_file_content;
  }
  std::string dir_;
};

TEST_F(FakeSysBlock, FindsTheOneDiskWithTheSerial) {
  disk("vda", "ksbox-layer");  // the order of the --disk options does not matter
  disk("vdb", "ksbox-root\n");
  disk("vdc", "");
  std::filesystem::create_directories(dir_ + "/loop0");  // no serial attribute
  std::string error;
  EXPECT_EQ(find_disk_by_serial("ksbox-root", dir_, &error), "/dev/vdb") << error;
  EXPECT_EQ(find_disk_by_serial("ksbox-layer", dir_, &error), "/dev/vda") << error;
  EXPECT_FALSE(find_disk_by_serial("ksbox-roo", dir_, &error));
  EXPECT_NE(error.find("no disk has the serial 'ksbox-roo'"), std::string::npos) << error;
}

TEST_F(FakeSysBlock, RefusesASerialTwoDisksHave) {
  disk("vda", "same");
  disk("vdb", "same");
  std::string error;
  EXPECT_FALSE(find_disk_by_serial("same", dir_, &error));
  EXPECT_NE(error.find("2 disks have the serial 'same'"), std::string::npos) << error;
}

TEST_F(FakeSysBlock, IgnoresEntriesThatAreNotDeviceNames) {
  disk("bad name", "x");
  disk("vd.a", "x");
  std::string error;
  EXPECT_FALSE(find_disk_by_serial("x", dir_, &error));
  EXPECT_FALSE(find_disk_by_serial("x", dir_ + "/missing", &error));
  EXPECT_NE(error.find("cannot list"), std::string::npos) << error;
}

}  // namespace
}  // namespace ksbox::agent
