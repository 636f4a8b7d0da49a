// The egress filter's parsers: frame headers (packet_view.h) and DNS
// messages (dns_message.h), on well-formed and hostile input.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/net/dns_message.h"
#include "devices/net/packet_view.h"

namespace ksbox::devices::net {
namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

// Ethernet + IPv4 (no options) + `l4` with protocol `proto`, 10.0.2.15 → `dst`.
Bytes ipv4_frame(uint8_t proto, const Bytes& l4, uint32_t dst = 0x0a000203, uint16_t frag = 0x4000) {
  Bytes f = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0};
  put16(f, static_cast<uint16_t>(20 + l4.size()));
  put16(f, 0);
  put16(f, frag);
  f.insert(f.end(), {64, proto, 0, 0, 10, 0, 2, 15});
  for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<uint8_t>(dst >> s));
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, static_cast<uint16_t>(8 + payload.size()));
  put16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  return u;
}

Bytes name(std::initializer_list<std::string> labels) {
  Bytes b;
  for (const auto& l : labels) {
    b.push_back(static_cast<uint8_t>(l.size()));
    b.insert(b.end(), l.begin(), l.end());
  }
  b.push_back(0);
  return b;
}

Bytes dns_query(const Bytes& qname, uint16_t qtype = kDnsTypeA) {
  Bytes m = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  m.insert(m.end(), qname.begin(), qname.end());
  put16(m, qtype);
  put16(m, kDnsClassIn);
  return m;
}

// A response to dns_query(qname): a CNAME (compressed owner), then A records.
Bytes dns_response(const Bytes& qname, const std::vector<uint32_t>& addrs) {
  Bytes m = dns_query(qname);
  m[2] = 0x81;
  m[3] = 0x80;
  m[7] = static_cast<uint8_t>(1 + addrs.size());
  m.insert(m.end(), {0xc0, 12});
  put16(m, 5);
  put16(m, kDnsClassIn);
  m.insert(m.end(), {0, 0, 0, 60});
  const Bytes target = name({"edge", "cdn", "net"});
  put16(m, static_cast<uint16_t>(target.size()));
  const size_t target_at = m.size();
  m.insert(m.end(), target.begin(), target.end());
  for (uint32_t a : addrs) {
    m.insert(m.end(), {0xc0, static_cast<uint8_t>(target_at)});
    put16(m, kDnsTypeA);
    put16(m, kDnsClassIn);
    m.insert(m.end(), {0, 0, 0, 60});
    put16(m, 4);
    for (int s = 24; s >= 0; s -= 8) m.push_back(static_cast<uint8_t>(a >> s));
  }
  return m;
}

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
