#include "vmm/network_config.h"

#include <gtest/gtest.h>

#include "test_helpers.h"

namespace ksbox {
namespace {

TEST(PublishTest, HostAddressDefaultsToLoopback) {
  EXPECT_EQ(parse_publish("8080:80"), (PublishConfig{"127.0.0.1", 8080, 80}));
  EXPECT_EQ(parse_publish("0.0.0.0:1:65535"), (PublishConfig{"0.0.0.0", 1, 65535}));
  EXPECT_EQ(parse_publish("192.168.1.5:3000:3000"), (PublishConfig{"192.168.1.5", 3000, 3000}));
}

TEST(PublishTest, BadSyntaxPortsAndAddressesAreRefused) {
  for (const char* bad : {"", "8080", ":80", "8080:", "0:80", "8080:0", "65536:80", "80:99999", "x:80", "80:8o",
                          "-1:80", "localhost:80:80", "1.2.3:80:80", "::1:80:80", "1.2.3.4:80:80:80"}) {
    SCOPED_TRACE(bad);
    EXPECT_KSBOX_ERROR(parse_publish(bad), "--publish");
  }
}

TEST(NetworkConfigTest, ModesAndPublishNeedingANetwork) {
  EXPECT_NO_THROW(validate_network({}));
  EXPECT_NO_THROW(validate_network({"user", {parse_publish("8080:80")}}));
  EXPECT_KSBOX_ERROR(validate_network({"tap", {}}), "'off' or 'user'");
  EXPECT_KSBOX_ERROR(validate_network({"off", {parse_publish("8080:80")}}), "--network user");
  EXPECT_KSBOX_ERROR(validate_network({"user", {parse_publish("8080:80"), parse_publish("127.0.0.1:8080:81")}}),
                     "twice");
  EXPECT_NO_THROW(validate_network({"user", {parse_publish("8080:80"), parse_publish("0.0.0.0:8080:81")}}));
}

}  // namespace
}  // namespace ksbox
