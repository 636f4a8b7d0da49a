// --network filtered's rules on frames (egress_policy.h).
#include "devices/net/egress_policy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/devices/net/frame_builders.h"

namespace ksbox::devices::net {
namespace {

using namespace testing;
using Verdict = EgressPolicy::Verdict;

constexpr uint32_t kDns = 0x0a000203;                          // 10.0.2.3
constexpr uint32_t kGithub = 0x8c520003, kOther = 0x01010101;  // 140.82.0.3, 1.1.1.1

// The DNS server's answer, as slirp hands it to the guest.
Bytes dns_reply_frame(const Bytes& qname, std::vector<uint32_t> addrs) {
  Bytes f = ipv4_frame(kIpProtoUdp, udp(53, 40000, dns_response(qname, addrs)), 0x0a00020f);
  f[26] = 10, f[27] = 0, f[28] = 2, f[29] = 3;  // from the DNS server
  return f;
}

class EgressPolicyTest : public ::testing::Test {
 protected:
  EgressPolicy policy_{EgressRules{{"github.com", "pypi.org"}, {80, 443}, kDns}};
};

TEST_F(EgressPolicyTest, AllowedNamesResolveOthersDoNot) {
  auto out = policy_.check_outbound(ipv4_frame(kIpProtoUdp, udp(40000, 53, dns_query(name({"api", "github", "com"})))));
  EXPECT_EQ(out.verdict, Verdict::kPass);
  ASSERT_TRUE(out.event);
  EXPECT_TRUE(out.event->allowed);
  EXPECT_EQ(out.event->name, "api.github.com");
  out = policy_.check_outbound(ipv4_frame(kIpProtoUdp, udp(40000, 53, dns_query(name({"evilgithub", "com"})))));
  EXPECT_EQ(out.verdict, Verdict::kDrop);
  ASSERT_TRUE(out.event);
  EXPECT_FALSE(out.event->allowed);
  EXPECT_EQ(out.event->name, "evilgithub.com");
  EXPECT_EQ(out.event->reason, "name not on the allowlist");
}

TEST_F(EgressPolicyTest, ConnectOnlyToAddressesFromAllowedLookupsOnAllowedPorts) {
  EXPECT_EQ(policy_.check_outbound(ipv4_frame(kIpProtoTcp, tcp(443, kTcpSyn), kGithub)).verdict, Verdict::kDrop);
  policy_.observe_inbound(dns_reply_frame(name({"github", "com"}), {kGithub}));
  // An answer for a name that is not allowed teaches nothing.
  policy_.observe_inbound(dns_reply_frame(name({"example", "net"}), {kOther}));
  EXPECT_TRUE(policy_.address_allowed(kGithub));
  EXPECT_FALSE(policy_.address_allowed(kOther));

  auto out = policy_.check_outbound(ipv4_frame(kIpProtoTcp, tcp(443, kTcpSyn), kGithub));
  EXPECT_EQ(out.verdict, Verdict::kPass);
  ASSERT_TRUE(out.event);
  EXPECT_EQ(out.event->kind, "connect");
  EXPECT_EQ(out.event->name, "github.com");
  // The rest of the flow passes without a log line each.
  out = policy_.check_outbound(ipv4_frame(kIpProtoTcp, tcp(443, kTcpAck), kGithub));
  EXPECT_EQ(out.verdict, Verdict::kPass);
  EXPECT_FALSE(out.event);

  out = policy_.check_outbound(ipv4_frame(kIpProtoTcp, tcp(22, kTcpSyn), kGithub));
  EXPECT_EQ(out.verdict, Verdict::kDrop);
  EXPECT_EQ(out.event->reason, "port not allowed");
  out = policy_.check_outbound(ipv4_frame(kIpProtoTcp, tcp(443, kTcpSyn), kOther));  // a literal IP
  EXPECT_EQ(out.verdict, Verdict::kDrop);
  EXPECT_EQ(out.event->reason, "address not returned by an allowed lookup");
}

TEST_F(EgressPolicyTest, NoWayAroundTheResolver) {
  // Another DNS server, DNS over TCP, other UDP, ICMP, fragments, IPv6.
  const std::vector<Bytes> frames = {
      ipv4_frame(kIpProtoUdp, udp(40000, 53, dns_query(name({"github", "com"}))), kOther),
      ipv4_frame(kIpProtoTcp, tcp(53, kTcpSyn), kDns),
      ipv4_frame(kIpProtoUdp, udp(40000, 443, {1, 2, 3}), kGithub),
      ipv4_frame(kIpProtoIcmp, Bytes(8, 0), kGithub),
      ipv4_frame(kIpProtoUdp, udp(40000, 53, dns_query(name({"github", "com"}))), kDns, 0x2000),
  };
  policy_.observe_inbound(dns_reply_frame(name({"github", "com"}), {kGithub}));
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto out = policy_.check_outbound(frames[i]);
    EXPECT_EQ(out.verdict, Verdict::kDrop) << i;
    EXPECT_TRUE(out.event && !out.event->allowed) << i;
  }
  Bytes v6 = ipv4_frame(kIpProtoUdp, udp(1, 53, {}));
  v6[12] = 0x86;
  v6[13] = 0xdd;
  EXPECT_EQ(policy_.check_outbound(v6).verdict, Verdict::kDrop);
  Bytes arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(policy_.check_outbound(arp).verdict, Verdict::kPass);
}

TEST(EgressPolicyFixedTest, FixedAddressesNeedNoLookupButStillAnAllowedPort) {
  constexpr uint32_t kGateway = 0x0a000202;  // --allow-host-loopback
  EgressPolicy p(EgressRules{{}, {80}, kDns, {{kGateway, "host-loopback"}}});
  auto out = p.check_outbound(ipv4_frame(kIpProtoTcp, tcp(80, kTcpSyn), kGateway));
  EXPECT_EQ(out.verdict, Verdict::kPass);
  ASSERT_TRUE(out.event);
  EXPECT_EQ(out.event->name, "host-loopback");
  EXPECT_EQ(p.check_outbound(ipv4_frame(kIpProtoTcp, tcp(22, kTcpSyn), kGateway)).verdict, Verdict::kDrop);
  EXPECT_EQ(EgressPolicy(EgressRules{{}, {80}, kDns, {}})
                .check_outbound(ipv4_frame(kIpProtoTcp, tcp(80, kTcpSyn), kGateway))
                .verdict,
            Verdict::kDrop);
}

TEST_F(EgressPolicyTest, EventsAreJsonLines) {
  const auto line = EgressPolicy::json_line({false, "connect", "github.com", kGithub, 22, "port not allowed"});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["allowed"], false);
  EXPECT_EQ(j["kind"], "connect");
  EXPECT_EQ(j["name"], "github.com");
  EXPECT_EQ(j["dst"], "140.82.0.3");
  EXPECT_EQ(j["port"], 22);
  EXPECT_EQ(j["reason"], "port not allowed");
}

}  // namespace
}  // namespace ksbox::devices::net
