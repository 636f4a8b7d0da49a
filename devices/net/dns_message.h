// The parts of a DNS message (RFC 1035 §4) the egress filter acts on: the
// one question of a query, and the IPv4 addresses in a response's answers.
// Guest and network both control these bytes: every count, length and
// compression pointer is checked; names are lowercased and accepted only
// when every label is 1..63 bytes of letters, digits, '-' and '_' (so no
// name can smuggle a '.' or NUL inside a label past a suffix match).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox::devices::net {

inline constexpr uint16_t kDnsTypeA = 1, kDnsTypeAaaa = 28, kDnsClassIn = 1;
inline constexpr size_t kMaxDnsAnswers = 64;  // answers looked at, at most

struct DnsMessage {
  uint16_t id = 0;
  bool response = false;
  uint8_t opcode = 0, rcode = 0;
  std::string qname;  // lowercased, without the trailing dot; "" is the root
  uint16_t qtype = 0, qclass = 0;
  size_t question_end = 0;  // offset just past the question (header + question = msg.first(question_end))
  std::vector<uint32_t> a_records;  // IN A answers (host byte order), responses only
};

// nullopt unless the message has exactly one question and parses cleanly up
// to the end of the answers it looks at.
std::optional<DnsMessage> parse_dns(std::span<const uint8_t> msg);

// Suffix match on label boundaries: "github.com" allows "github.com" and
// "api.github.com", not "evilgithub.com". `name` and the entries are
// lowercase without trailing dots.
bool dns_name_allowed(std::string_view name, std::span<const std::string> allowlist);

}  // namespace ksbox::devices::net
