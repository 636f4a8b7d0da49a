#include "guest-image/agent/net_params.h"

#include <gtest/gtest.h>

namespace ksbox::agent {
namespace {

std::string ip(in_addr a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

TEST(NetParamsTest, ParsesTheVmmsWord) {
  const auto p = parse_net_params("console=ttyS0 reboot=k ksbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3 quiet\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(ip(p->address), "10.0.2.15");
  EXPECT_EQ(p->prefix, 24u);
  EXPECT_EQ(ip(p->gateway), "10.0.2.2");
  EXPECT_EQ(ip(p->dns), "10.0.2.3");
  // The last word wins (a user's --cmdline comes after the VMM's).
  const auto q = parse_net_params("ksbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3 ksbox.net=192.168.0.9/16,192.168.0.1,1.1.1.1");
  ASSERT_TRUE(q);
  EXPECT_EQ(ip(q->address), "192.168.0.9");
  EXPECT_EQ(q->prefix, 16u);
}

TEST(NetParamsTest, MissingOrMalformedMeansNoNetwork) {
  for (const char* bad : {"", "console=ttyS0", "ksbox.net=", "ksbox.net=10.0.2.15,10.0.2.2,10.0.2.3",
                          "ksbox.net=10.0.2.15/33,10.0.2.2,10.0.2.3", "ksbox.net=10.0.2.15/24,10.0.2.2",
                          "ksbox.net=10.0.2.15/x,10.0.2.2,10.0.2.3", "ksbox.net=10.0.2/24,10.0.2.2,10.0.2.3",
                          "ksbox.net=10.0.2.15/24,gw,10.0.2.3", "ksbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3,extra",
                          "xksbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_net_params(bad));
  }
}

}  // namespace
}  // namespace ksbox::agent
