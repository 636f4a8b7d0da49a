// The kernel command-line words that make the agent boot from a root disk
// (guest-image/agent/root_disk.h). The command line comes from the host, but
// its values end up as mount sources: anything but /dev/NAME is refused.
#include "guest-image/agent/root_disk.h"

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
                           "ksbox.root=/dev/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
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

}  // namespace
}  // namespace ksbox::agent
