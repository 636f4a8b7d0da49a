// libFuzzer target for the egress filter (devices/net/packet_view.h,
// dns_message.h, egress_policy.h) on arbitrary bytes.
//
// Input: byte 0 picks the mode (bit 0: 0 = frames, 1 = DNS message).
//  - frames: u16 n, then an inbound frame of n bytes (shown to the policy
//    as coming from the network) and an outbound frame (the rest), which
//    goes through the parsers and the policy.
//  - DNS message: the rest. Views must stay inside the
// input; accepted names must be well-formed lowercase presentation names;
// the allowlist must only match on label boundaries; what the policy lets
// through must be what its rules allow; the answers the filter makes from a
// guest frame (reply_frames.h: RST, UDP, NXDOMAIN) must parse back as
// answers to it.
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "devices/net/dns_message.h"
#include "devices/net/egress_policy.h"
#include "devices/net/packet_view.h"
#include "devices/net/reply_frames.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_guest_memory.h"

namespace ksbox::devices::net {
namespace {

using fuzz::Input;

bool inside(std::span<const uint8_t> part, std::span<const uint8_t> whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_name(const std::string& name) {
  CHECK(name.size() <= 253);
  if (name.empty()) return;
  CHECK(name.front() != '.' && name.back() != '.' && name.find("..") == std::string::npos);
  for (const char c : name)
    CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
  // Label-boundary suffix matching, against entries made from the name itself.
  const std::vector<std::string> self = {name};
  CHECK(dns_name_allowed(name, self));
  const size_t dot = name.find('.');
  if (dot != std::string::npos) {
    const std::vector<std::string> parent = {name.substr(dot + 1)};
    CHECK(dns_name_allowed(name, parent));
  }
  // Cut inside the first label ("xample.com" for "example.com"): no match.
  if (const size_t first = dot == std::string::npos ? name.size() : dot; first >= 2) {
    const std::vector<std::string> cut = {name.substr(1)};
    CHECK(!dns_name_allowed(name, cut));
  }
}

void fuzz_dns(std::span<const uint8_t> msg) {
  const auto m = parse_dns(msg);
  if (!m) return;
  check_name(m->qname);
  CHECK(m->a_records.size() <= kMaxDnsAnswers);
  if (!m->response) CHECK(m->a_records.empty());
}

// What passes the policy: ARP, allowed DNS queries to the resolver, TCP to
// addresses learned from `inbound` on allowed ports.
void fuzz_policy(std::span<const uint8_t> inbound, std::span<const uint8_t> frame) {
  EgressPolicy policy(EgressRules{{"github.com", "test"}, {80, 443}, 0x0a000203});
  policy.observe_inbound(inbound);
  const auto out = policy.check_outbound(frame);
  if (out.event) CHECK(out.event->allowed == (out.verdict == EgressPolicy::Verdict::kPass));
  if (out.verdict != EgressPolicy::Verdict::kPass || ether_type(frame) == kEtherTypeArp) return;
  const auto l4 = parse_l4(frame);
  CHECK(l4);
  if (l4->protocol == kIpProtoUdp) {
    CHECK(l4->dst == 0x0a000203 && l4->dport == 53);
    const auto q = parse_dns(l4->payload);
    CHECK(q && !q->response);
    const std::vector<std::string> allow = {"github.com", "test"};
    CHECK(dns_name_allowed(q->qname, allow));
  } else {
    CHECK(l4->protocol == kIpProtoTcp && policy.address_allowed(l4->dst));
    CHECK(l4->dport == 80 || l4->dport == 443);
    CHECK(!(l4->dst == 0x0a000203 && l4->dport == 53));
  }
}

// The filter's answers to a guest frame go back the way it came.
void fuzz_replies(std::span<const uint8_t> frame, const L4View& l4) {
  const auto ends = flow_ends(frame, l4);
  const auto back = [&](const std::vector<uint8_t>& f, uint8_t proto) {
    const auto r = parse_l4(f);
    CHECK(r && r->protocol == proto);
    CHECK(r->src == l4.dst && r->dst == l4.src && r->sport == l4.dport && r->dport == l4.sport);
    CHECK(std::equal(f.begin(), f.begin() + 6, frame.begin() + 6));  // to the guest's MAC
    return *r;
  };
  if (l4.protocol == kIpProtoTcp) {
    CHECK(back(tcp_reset_to_guest(ends, l4), kIpProtoTcp).tcp_flags == (kTcpRst | kTcpAck));
    return;
  }
  const auto echo = udp_to_guest(ends, l4.payload);
  const auto r = back(echo, kIpProtoUdp);
  CHECK(std::equal(r.payload.begin(), r.payload.end(), l4.payload.begin(), l4.payload.end()));
  const auto q = parse_dns(l4.payload);
  if (!q || q->response) return;
  const auto nx = parse_dns(dns_nxdomain(l4.payload, *q));
  CHECK(nx && nx->response && nx->rcode == 3 && nx->id == q->id && nx->qname == q->qname && nx->a_records.empty());
}

void fuzz_frame(std::span<const uint8_t> frame) {
  if (const auto ip = parse_ipv4(frame)) CHECK(inside(ip->payload, frame));
  const auto l4 = parse_l4(frame);
  if (!l4) return;
  CHECK(l4->protocol == kIpProtoTcp || l4->protocol == kIpProtoUdp);
  CHECK(inside(l4->payload, frame));
  if (l4->protocol == kIpProtoUdp) fuzz_dns(l4->payload);
  fuzz_replies(frame, *l4);
}

void frame_mode(Input& in) {
  const uint16_t n = in.take<uint16_t>();
  const auto rest = in.rest();
  const auto inbound = rest.first(std::min<size_t>(n, rest.size()));
  const auto outbound = rest.subspan(inbound.size());
  fuzz_policy(inbound, outbound);
  fuzz_frame(outbound);
}
void dns_mode(Input& in) { fuzz_dns(in.rest()); }

}  // namespace
}  // namespace ksbox::devices::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ksbox::devices::net;
  return ksbox::fuzz::run_by_mode(data, size, frame_mode, dns_mode);
}
