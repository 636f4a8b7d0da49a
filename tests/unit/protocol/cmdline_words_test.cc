#include "protocol/cmdline_words.h"

#include <gtest/gtest.h>

namespace ksbox::protocol {
namespace {

using Tags = std::vector<std::string>;

TEST(CmdlineWords, TheLastWordWins) {
  EXPECT_EQ(last_param("a=1 ksbox.x=2 b ksbox.x=3", "ksbox.x="), "3");
  EXPECT_EQ(last_param("ksbox.x=", "ksbox.x="), "");
  EXPECT_FALSE(last_param("xksbox.x=1 ksbox.xy", "ksbox.x="));
}

TEST(CmdlineWords, ShareTagsAreSafeDirectoryNames) {
  EXPECT_EQ(parse_share_tags("console=ttyS0 ksbox.shares=workspace,data,cache\n"),
            (Tags{"workspace", "data", "cache"}));
  EXPECT_EQ(parse_share_tags("ksbox.shares=a,,a,..,.,x/y,ok_1.2-3," + std::string(37, 'z')), (Tags{"a", "ok_1.2-3"}));
  EXPECT_EQ(parse_share_tags("ksbox.shares=old ksbox.shares=new"), (Tags{"new"}));
  EXPECT_EQ(parse_share_tags("quiet"), Tags{});
  EXPECT_TRUE(is_mountable_tag(std::string(36, 'a')));
  EXPECT_FALSE(is_mountable_tag("caf\xc3\xa9"));
}

}  // namespace
}  // namespace ksbox::protocol
