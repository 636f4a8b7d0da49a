// The rules of `--network filtered`, as pure decisions on frames: the
// guest may resolve only allowlisted names (suffix match), through the
// VMM's DNS address only, over UDP only; it may open TCP connections only
// to addresses that an allowed lookup returned, and only on allowed ports.
// Everything else is dropped: literal IPs, other DNS servers, DNS over TCP,
// other UDP, ICMP, IPv6, fragments. Each decision worth logging comes back
// as an EgressEvent (DNS queries, TCP connection attempts, other drops).
//
// Meant to sit between the virtio-net device and the slirp backend (guest →
// network frames through check_outbound(), network → guest frames through
// observe_inbound()); not thread-safe: one backend thread uses it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ksbox::devices::net {

struct EgressRules {
  std::vector<std::string> allow_names;  // lowercase, no trailing dot
  std::vector<uint16_t> allow_ports{80, 443};
  uint32_t dns_server = 0x0a000203;  // 10.0.2.3, host byte order
  // Addresses reachable (on the allowed ports) without a lookup, with the
  // name the log shows: the gateway when the host's loopback is allowed.
  std::unordered_map<uint32_t, std::string> fixed_addrs;
};

struct EgressEvent {
  bool allowed = false;
  std::string kind;    // "dns", "connect" or "packet"
  std::string name;    // the DNS name asked, or the name that resolved to `addr`
  uint32_t addr = 0;   // destination (host byte order)
  uint16_t port = 0;
  std::string reason;  // why it was denied; empty when allowed
};

class EgressPolicy {
 public:
  explicit EgressPolicy(EgressRules rules);

  enum class Verdict : uint8_t { kPass, kDrop };
  struct Outcome {
    Verdict verdict = Verdict::kDrop;
    std::optional<EgressEvent> event;  // set when the decision is worth a log line
  };
  // A frame from the guest.
  Outcome check_outbound(std::span<const uint8_t> frame) const;
  // A frame for the guest: the A records of answers to allowed questions
  // become reachable addresses.
  void observe_inbound(std::span<const uint8_t> frame);

  bool address_allowed(uint32_t addr) const { return resolved_.contains(addr); }
  uint32_t dns_server() const { return rules_.dns_server; }
  // {"allowed":…,"kind":…,"name":…,"dst":"a.b.c.d","port":…,"reason":…}
  static nlohmann::json json(const EgressEvent& e);
  // json(e) as one line, without the newline.
  static std::string json_line(const EgressEvent& e);

 private:
  Outcome deny(std::string kind, std::string name, uint32_t addr, uint16_t port, std::string reason) const;
  bool port_allowed(uint16_t port) const;

  const EgressRules rules_;
  // Address → the allowed name whose lookup returned it. Bounded: beyond
  // kMaxResolved the oldest entries are not evicted, new ones are ignored.
  std::unordered_map<uint32_t, std::string> resolved_;
  static constexpr size_t kMaxResolved = 65536;
};

}  // namespace ksbox::devices::net
