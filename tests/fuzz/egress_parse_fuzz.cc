// libFuzzer target for the egress filter's parsers (devices/net/
// packet_view.h, dns_message.h) on arbitrary bytes.
//
// Input: byte 0 picks the mode (bit 0: 0 = frame, 1 = DNS message); the
// rest is an Ethernet frame or a DNS message. Views must stay inside the
// input; accepted names must be well-formed lowercase presentation names;
// the allowlist must only match on label boundaries.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "devices/net/dns_message.h"
#include "devices/net/packet_view.h"
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

void fuzz_frame(std::span<const uint8_t> frame) {
  if (const auto ip = parse_ipv4(frame)) CHECK(inside(ip->payload, frame));
  const auto l4 = parse_l4(frame);
  if (!l4) return;
  CHECK(l4->protocol == kIpProtoTcp || l4->protocol == kIpProtoUdp);
  CHECK(inside(l4->payload, frame));
  if (l4->protocol == kIpProtoUdp) fuzz_dns(l4->payload);
}

void frame_mode(Input& in) { fuzz_frame(in.rest()); }
void dns_mode(Input& in) { fuzz_dns(in.rest()); }

}  // namespace
}  // namespace ksbox::devices::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ksbox::devices::net;
  return ksbox::fuzz::run_by_mode(data, size, frame_mode, dns_mode);
}
