// The egress filter's parsers: frame headers (packet_view.h) and DNS
// messages (dns_message.h), on well-formed and hostile input.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/net/dns_message.h"
#include "devices/net/packet_view.h"
#include "tests/unit/devices/net/frame_builders.h"

namespace ksbox::devices::net {
namespace {

using namespace testing;

TEST(PacketViewTest, UdpAndTcpHeadersAndPayload) {
  const auto f = ipv4_frame(kIpProtoUdp, udp(5353, 53, {1, 2, 3}));
  const auto v = parse_l4(f);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->protocol, kIpProtoUdp);
  EXPECT_EQ(v->src, 0x0a00020fu);
  EXPECT_EQ(v->dst, 0x0a000203u);
  EXPECT_EQ(v->sport, 5353);
  EXPECT_EQ(v->dport, 53);
  EXPECT_EQ(Bytes(v->payload.begin(), v->payload.end()), (Bytes{1, 2, 3}));

  Bytes tcp(20, 0);
  tcp[2] = 1;  // port 443
  tcp[3] = 0xbb;
  tcp[12] = 5 << 4;
  tcp[13] = kTcpSyn;
  const auto t = parse_l4(ipv4_frame(kIpProtoTcp, tcp, 0x8c520001));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->dport, 443);
  EXPECT_EQ(t->tcp_flags, kTcpSyn);
  EXPECT_EQ(t->dst, 0x8c520001u);
  EXPECT_TRUE(t->payload.empty());
}

TEST(PacketViewTest, BrokenHeadersAreNotRecognised) {
  auto f = ipv4_frame(kIpProtoUdp, udp(1, 53, {}));
  EXPECT_FALSE(parse_l4(std::span(f).first(f.size() - 1)));  // total length beyond the frame
  auto g = f;
  g[14] = 0x44;  // IHL 16 bytes
  EXPECT_FALSE(parse_ipv4(g));
  g = f;
  g[14] = 0x65;  // version 6
  EXPECT_FALSE(parse_ipv4(g));
  g = f;
  g[34 + 5] = 200;  // UDP length beyond the packet
  EXPECT_FALSE(parse_l4(g));
  Bytes tcp(20, 0);
  tcp[12] = 15 << 4;  // 60-byte header in 20 bytes
  EXPECT_FALSE(parse_l4(ipv4_frame(kIpProtoTcp, tcp)));
  // Fragments carry no usable port numbers: never recognised as TCP/UDP.
  EXPECT_FALSE(parse_l4(ipv4_frame(kIpProtoUdp, udp(1, 53, {}), 0x0a000203, 0x2000)));
  EXPECT_TRUE(parse_ipv4(ipv4_frame(kIpProtoUdp, udp(1, 53, {}), 0x0a000203, 0x2000))->fragment);
  EXPECT_FALSE(parse_l4(ipv4_frame(kIpProtoIcmp, Bytes(8, 0))));
  EXPECT_FALSE(ether_type(Bytes(13, 0)));
}

TEST(DnsMessageTest, QueryNameIsLowercasedAndTyped) {
  const auto m = parse_dns(dns_query(name({"API", "GitHub", "com"}), kDnsTypeAaaa));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->response);
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_EQ(m->qname, "api.github.com");
  EXPECT_EQ(m->qtype, kDnsTypeAaaa);
  EXPECT_EQ(m->qclass, kDnsClassIn);
}

TEST(DnsMessageTest, ResponseYieldsTheARecordsThroughCompressedNames) {
  const auto m = parse_dns(dns_response(name({"github", "com"}), {0x8c520003, 0x8c520004}));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->response);
  EXPECT_EQ(m->qname, "github.com");
  EXPECT_EQ(m->a_records, (std::vector<uint32_t>{0x8c520003, 0x8c520004}));
}

TEST(DnsMessageTest, HostileMessagesAreRefused) {
  // Labels that could fool a suffix match, or are not names at all.
  for (const Bytes& n : {name({"evil.github", "com"}), name({std::string("a\0b", 3), "com"}), name({"a b", "com"}),
                         name({std::string(64, 'a'), "com"})}) {
    EXPECT_FALSE(parse_dns(dns_query(n)));
  }
  Bytes q = dns_query(name({"a", "com"}));
  q[5] = 2;  // two questions
  EXPECT_FALSE(parse_dns(q));
  q = dns_query(name({"a", "com"}));
  EXPECT_FALSE(parse_dns(std::span(q).first(q.size() - 1)));  // truncated
  // A pointer to itself, and one forward.
  Bytes loop = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  EXPECT_FALSE(parse_dns(loop));
  Bytes fwd = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0, 0, 1};
  EXPECT_FALSE(parse_dns(fwd));
  // A pointer into the header, which a refusal rewrites (found by
  // egress_parse_fuzz: the NXDOMAIN's name differed from the query's).
  Bytes into_header = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xc0, 3, 0, 1, 0, 1};
  EXPECT_FALSE(parse_dns(into_header));
  // An answer whose rdlength runs past the end.
  auto r = dns_response(name({"a", "com"}), {1});
  r[r.size() - 5] = 9;
  EXPECT_FALSE(parse_dns(r));
  // Names longer than 253 characters.
  std::initializer_list<std::string> long_name = {std::string(63, 'a'), std::string(63, 'b'), std::string(63, 'c'),
                                                  std::string(63, 'd')};
  EXPECT_FALSE(parse_dns(dns_query(name(long_name))));
}

TEST(DnsMessageTest, AllowlistMatchesOnLabelBoundaries) {
  const std::vector<std::string> allow = {"github.com", "pypi.org"};
  EXPECT_TRUE(dns_name_allowed("github.com", allow));
  EXPECT_TRUE(dns_name_allowed("api.github.com", allow));
  EXPECT_TRUE(dns_name_allowed("files.pythonhosted.pypi.org", allow));
  EXPECT_FALSE(dns_name_allowed("evilgithub.com", allow));
  EXPECT_FALSE(dns_name_allowed("github.com.evil.net", allow));
  EXPECT_FALSE(dns_name_allowed("com", allow));
  EXPECT_FALSE(dns_name_allowed("", allow));
}

}  // namespace
}  // namespace ksbox::devices::net
