#include "vmm/network_config.h"

#include <gtest/gtest.h>

#include <algorithm>

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
  EXPECT_KSBOX_ERROR(validate_network({"tap", {}}), "'off', 'user' or 'filtered'");
  EXPECT_KSBOX_ERROR(validate_network({"filtered", {parse_publish("8080:80")}}), "--network user only");
  EXPECT_KSBOX_ERROR(validate_network({"off", {parse_publish("8080:80")}}), "--network user");
  EXPECT_KSBOX_ERROR(validate_network({"user", {parse_publish("8080:80"), parse_publish("127.0.0.1:8080:81")}}),
                     "twice");
  EXPECT_NO_THROW(validate_network({"user", {parse_publish("8080:80"), parse_publish("0.0.0.0:8080:81")}}));
}

TEST(NetworkConfigTest, FilteredOptionsNeedTheFilteredMode) {
  NetworkConfig net{"user", {}};
  net.allow = {"example.com"};
  EXPECT_KSBOX_ERROR(validate_network(net), "need --network filtered");
  net = {"user", {}};
  net.egress_log = "/tmp/egress.log";
  EXPECT_KSBOX_ERROR(validate_network(net), "need --network filtered");
  net.mode = "filtered";
  EXPECT_NO_THROW(validate_network(net));
  net.allow_ports = {0};
  EXPECT_KSBOX_ERROR(validate_network(net), "--allow-port 0");
}

TEST(NetworkConfigTest, AllowNamesAreNormalisedDomainNames) {
  EXPECT_EQ(parse_allow_name("GitHub.COM."), "github.com");
  EXPECT_EQ(parse_allow_name("_dmarc.example-1.org"), "_dmarc.example-1.org");
  for (const char* bad : {"", ".", "a..b", ".com", "exa mple.com", "*.github.com", "a/b", "1.2.3.4:80",
                          "caf\xc3\xa9.com"}) {
    SCOPED_TRACE(bad);
    EXPECT_KSBOX_ERROR(parse_allow_name(bad), "--allow");
  }
  EXPECT_KSBOX_ERROR(parse_allow_name(std::string(64, 'a') + ".com"), "--allow");
}

TEST(NetworkConfigTest, TheAllowlistIsTheDefaultsPlusAllowUnlessNoDefault) {
  NetworkConfig net{"filtered", {}};
  net.allow = {"allowed.test", "github.com"};
  const auto with = effective_allowlist(net);
  EXPECT_EQ(with.size(), 22u);  // 21 defaults, github.com once
  EXPECT_NE(std::find(with.begin(), with.end(), "api.anthropic.com"), with.end());
  EXPECT_EQ(with.back(), "allowed.test");
  net.default_allow = false;
  EXPECT_EQ(effective_allowlist(net), (std::vector<std::string>{"allowed.test", "github.com"}));
  EXPECT_EQ(effective_allow_ports(net), (std::vector<uint16_t>{80, 443}));
  net.allow_ports = {8080};
  EXPECT_EQ(effective_allow_ports(net), (std::vector<uint16_t>{8080}));
}

}  // namespace
}  // namespace ksbox
