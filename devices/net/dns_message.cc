#include "devices/net/dns_message.h"

namespace ksbox::devices::net {
namespace {

constexpr size_t kHeader = 12;
constexpr size_t kMaxName = 253;  // presentation form, without the trailing dot
constexpr int kMaxPointers = 16;

uint16_t be16(std::span<const uint8_t> b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }

bool label_char_ok(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Reads the name at `pos`; on success `pos` is just past it (past the first
// pointer, if any) and `out` holds it (when wanted).
bool read_name(std::span<const uint8_t> msg, size_t& pos, std::string* out) {
  size_t at = pos;
  bool jumped = false;
  int pointers = 0;
  std::string name;
  for (;;) {
    if (at >= msg.size()) return false;
    const uint8_t len = msg[at];
    if ((len & 0xc0) == 0xc0) {
      if (at + 1 >= msg.size() || ++pointers > kMaxPointers) return false;
      const size_t target = size_t{len & 0x3fu} << 8 | msg[at + 1];
      // Only backwards (no loops), and never into the header: a reply
      // rewrites the header, and a name read from it would change.
      if (target >= at || target < kHeader) return false;
      if (!jumped) pos = at + 2;
      jumped = true;
      at = target;
      continue;
    }
    if (len & 0xc0) return false;  // the 0x40 and 0x80 label types are obsolete
    if (len == 0) {
      if (!jumped) pos = at + 1;
      break;
    }
    if (at + 1 + len > msg.size()) return false;
    if (!name.empty()) name.push_back('.');
    for (size_t i = 0; i < len; ++i) {
      const uint8_t c = msg[at + 1 + i];
      if (!label_char_ok(c)) return false;
      name.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
    }
    if (name.size() > kMaxName) return false;
    at += 1 + len;
  }
  if (out) *out = std::move(name);
  return true;
}

}  // namespace

std::optional<DnsMessage> parse_dns(std::span<const uint8_t> msg) {
  if (msg.size() < kHeader) return std::nullopt;
  DnsMessage m;
  m.id = be16(msg, 0);
  const uint16_t flags = be16(msg, 2);
  m.response = flags & 0x8000;
  m.opcode = static_cast<uint8_t>((flags >> 11) & 0xf);
  m.rcode = static_cast<uint8_t>(flags & 0xf);
  if (be16(msg, 4) != 1) return std::nullopt;  // exactly one question
  const uint16_t answers = be16(msg, 6);
  size_t pos = kHeader;
  if (!read_name(msg, pos, &m.qname) || pos + 4 > msg.size()) return std::nullopt;
  m.qtype = be16(msg, pos);
  m.qclass = be16(msg, pos + 2);
  pos += 4;
  m.question_end = pos;
  if (!m.response) return m;
  for (size_t i = 0; i < answers && i < kMaxDnsAnswers; ++i) {
    if (!read_name(msg, pos, nullptr) || pos + 10 > msg.size()) return std::nullopt;
    const uint16_t type = be16(msg, pos), cls = be16(msg, pos + 2), rdlen = be16(msg, pos + 8);
    pos += 10;
    if (pos + rdlen > msg.size()) return std::nullopt;
    if (type == kDnsTypeA && cls == kDnsClassIn && rdlen == 4)
      m.a_records.push_back(uint32_t{msg[pos]} << 24 | uint32_t{msg[pos + 1]} << 16 | uint32_t{msg[pos + 2]} << 8 |
                            msg[pos + 3]);
    pos += rdlen;
  }
  return m;
}

bool dns_name_allowed(std::string_view name, std::span<const std::string> allowlist) {
  for (const auto& entry : allowlist) {
    if (entry.empty()) continue;
    if (name == entry) return true;
    if (name.size() > entry.size() && name.ends_with(entry) && name[name.size() - entry.size() - 1] == '.')
      return true;
  }
  return false;
}

}  // namespace ksbox::devices::net
