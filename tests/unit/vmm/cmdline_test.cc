#include "vmm/cmdline.h"

#include <gtest/gtest.h>

#include <string>

namespace ksbox {
namespace {

const std::string kDefaults = kDefaultCmdline;

TEST(ComposeCmdlineTest, EmptyUserGivesJustTheDefaults) {
  EXPECT_EQ(compose_cmdline("", {}), kDefaults);
  EXPECT_EQ(kDefaults, "console=ttyS0 reboot=k panic=1");
}

TEST(ComposeCmdlineTest, DefaultsComeFirstThenUserArgs) {
  EXPECT_EQ(compose_cmdline("quiet loglevel=3", {}), kDefaults + " quiet loglevel=3");
  // The user's console= comes later, so it overrides the default one.
  const auto c = compose_cmdline("console=hvc0", {});
  ASSERT_NE(c.find("console=hvc0"), std::string::npos);
  EXPECT_LT(c.find("console=ttyS0"), c.find("console=hvc0"));
}

TEST(ComposeCmdlineTest, DeviceArgsAreAppendedAtTheEnd) {
  EXPECT_EQ(compose_cmdline("quiet", {"virtio_mmio.device=4K@0xd0000000:5", "x=1"}),
            kDefaults + " quiet virtio_mmio.device=4K@0xd0000000:5 x=1");
  EXPECT_EQ(compose_cmdline("", {"x=1"}), kDefaults + " x=1");
}

TEST(ComposeCmdlineTest, DeviceArgsGoBeforeAStandaloneDoubleDash) {
  EXPECT_EQ(compose_cmdline("quiet -- init arg", {"x=1", "y=2"}), kDefaults + " quiet x=1 y=2 -- init arg");
}

TEST(ComposeCmdlineTest, DoubleDashAtStartOrEndOfUserString) {
  EXPECT_EQ(compose_cmdline("-- init", {"x=1"}), kDefaults + " x=1 -- init");
  EXPECT_EQ(compose_cmdline("quiet --", {"x=1"}), kDefaults + " quiet x=1 --");
  EXPECT_EQ(compose_cmdline("--", {"x=1"}), kDefaults + " x=1 --");
}

TEST(ComposeCmdlineTest, OnlyTheFirstDoubleDashSplits) {
  EXPECT_EQ(compose_cmdline("a -- b -- c", {"x=1"}), kDefaults + " a x=1 -- b -- c");
}

TEST(ComposeCmdlineTest, DoubleDashPrefixIsNotASeparator) {
  EXPECT_EQ(compose_cmdline("--foo bar", {"x=1"}), kDefaults + " --foo bar x=1");
  EXPECT_EQ(compose_cmdline("a --- b", {"x=1"}), kDefaults + " a --- b x=1");
  EXPECT_EQ(compose_cmdline("a b--", {"x=1"}), kDefaults + " a b-- x=1");
  EXPECT_EQ(compose_cmdline("--foo -- bar", {"x=1"}), kDefaults + " --foo x=1 -- bar");
}

TEST(ComposeCmdlineTest, NoDeviceArgsLeavesADoubleDashAlone) {
  EXPECT_EQ(compose_cmdline("quiet -- init", {}), kDefaults + " quiet -- init");
}

}  // namespace
}  // namespace ksbox
