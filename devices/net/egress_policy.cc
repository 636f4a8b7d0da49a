#include "devices/net/egress_policy.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "devices/net/dns_message.h"
#include "devices/net/packet_view.h"

namespace ksbox::devices::net {
namespace {

constexpr uint16_t kDnsPort = 53;

std::string dotted(uint32_t a) { return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff); }

}  // namespace

EgressPolicy::EgressPolicy(EgressRules rules) : rules_(std::move(rules)), resolved_(rules_.fixed_addrs) {}

bool EgressPolicy::port_allowed(uint16_t port) const {
  return std::find(rules_.allow_ports.begin(), rules_.allow_ports.end(), port) != rules_.allow_ports.end();
}

EgressPolicy::Outcome EgressPolicy::deny(std::string kind, std::string name, uint32_t addr, uint16_t port,
                                         std::string reason) const {
  return {Verdict::kDrop, EgressEvent{false, std::move(kind), std::move(name), addr, port, std::move(reason)}};
}

EgressPolicy::Outcome EgressPolicy::check_outbound(std::span<const uint8_t> frame) const {
  const auto type = ether_type(frame);
  if (type == kEtherTypeArp) return {Verdict::kPass, std::nullopt};  // to find the gateway
  const auto l4 = parse_l4(frame);
  if (!l4) return deny("packet", "", 0, 0, type == kEtherTypeIpv4 ? "not TCP or UDP, or malformed" : "not IPv4");

  if (l4->protocol == kIpProtoUdp) {
    if (l4->dst != rules_.dns_server || l4->dport != kDnsPort)
      return deny("packet", "", l4->dst, l4->dport, "UDP other than DNS to the VMM's resolver");
    const auto q = parse_dns(l4->payload);
    if (!q || q->response || q->opcode != 0) return deny("dns", "", l4->dst, l4->dport, "malformed DNS query");
    if (!dns_name_allowed(q->qname, rules_.allow_names))
      return deny("dns", q->qname, l4->dst, l4->dport, "name not on the allowlist");
    return {Verdict::kPass, EgressEvent{true, "dns", q->qname, l4->dst, l4->dport, ""}};
  }

  // TCP: only connection attempts (SYN without ACK) are logged; the rest
  // of a flow passes or drops by the same rule without a line each.
  const bool syn = (l4->tcp_flags & kTcpSyn) && !(l4->tcp_flags & kTcpAck);
  const auto it = resolved_.find(l4->dst);
  const std::string name = it == resolved_.end() ? "" : it->second;
  std::string reason;
  if (l4->dst == rules_.dns_server && l4->dport == kDnsPort) reason = "DNS over TCP";
  else if (it == resolved_.end()) reason = "address not returned by an allowed lookup";
  else if (!port_allowed(l4->dport)) reason = "port not allowed";
  if (!reason.empty()) {
    auto out = deny("connect", name, l4->dst, l4->dport, std::move(reason));
    if (!syn) out.event.reset();
    return out;
  }
  if (!syn) return {Verdict::kPass, std::nullopt};
  return {Verdict::kPass, EgressEvent{true, "connect", name, l4->dst, l4->dport, ""}};
}

void EgressPolicy::observe_inbound(std::span<const uint8_t> frame) {
  const auto l4 = parse_l4(frame);
  if (!l4 || l4->protocol != kIpProtoUdp || l4->src != rules_.dns_server || l4->sport != kDnsPort) return;
  const auto r = parse_dns(l4->payload);
  if (!r || !r->response || !dns_name_allowed(r->qname, rules_.allow_names)) return;
  for (const uint32_t a : r->a_records)
    if (resolved_.size() < kMaxResolved || resolved_.contains(a)) resolved_[a] = r->qname;
}

nlohmann::json EgressPolicy::json(const EgressEvent& e) {
  return {{"allowed", e.allowed}, {"kind", e.kind},   {"name", e.name},
          {"dst", dotted(e.addr)}, {"port", e.port}, {"reason", e.reason}};
}

std::string EgressPolicy::json_line(const EgressEvent& e) { return json(e).dump(); }

}  // namespace ksbox::devices::net
