#include "vmm/network_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "devices/net/default_allowlist.h"
#include "vmm/error.h"

namespace ksbox {

uint16_t parse_port(std::string_view context, std::string_view s) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535)
    throw Error(fmt::format("{}: '{}' is not a port (1-65535)", context, s));
  return static_cast<uint16_t>(v);
}

PublishConfig parse_publish(std::string_view arg) {
  const std::string context = fmt::format("--publish '{}'", arg);
  PublishConfig p;
  const size_t last = arg.rfind(':');
  if (last == std::string_view::npos)
    throw Error(fmt::format("--publish '{}': expected [HOSTIP:]HOSTPORT:GUESTPORT", arg));
  p.guest_port = parse_port(context, arg.substr(last + 1));
  std::string_view host = arg.substr(0, last);
  if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    p.host_addr = std::string(host.substr(0, colon));
    host = host.substr(colon + 1);
    in_addr a{};
    if (::inet_pton(AF_INET, p.host_addr.c_str(), &a) != 1)
      throw Error(fmt::format("--publish '{}': '{}' is not an IPv4 address", arg, p.host_addr));
  }
  p.host_port = parse_port(context, host);
  return p;
}

std::string parse_allow_name(std::string_view arg) {
  std::string name(arg);
  if (name.ends_with('.')) name.pop_back();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool ok = !name.empty() && name.size() <= 253;
  size_t label = 0;
  for (const char c : name) {
    if (c == '.') {
      ok = ok && label > 0;
      label = 0;
    } else {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') && ++label <= 63;
    }
  }
  if (!ok || label == 0)
    throw Error(fmt::format("--allow '{}': not a domain name (a suffix such as github.com, which covers "
                            "api.github.com)",
                            arg));
  return name;
}

std::vector<std::string> effective_allowlist(const NetworkConfig& net) {
  std::vector<std::string> names;
  if (net.default_allow) names.assign(devices::net::kDefaultAllowlist.begin(), devices::net::kDefaultAllowlist.end());
  for (const auto& a : net.allow)
    if (std::find(names.begin(), names.end(), a) == names.end()) names.push_back(a);
  return names;
}

std::vector<uint16_t> effective_allow_ports(const NetworkConfig& net) {
  if (net.allow_ports.empty()) return {80, 443};
  return net.allow_ports;
}

void validate_network(const NetworkConfig& net) {
  if (net.mode != "off" && net.mode != "user" && net.mode != "filtered")
    throw Error(fmt::format("--network '{}': use 'off', 'user' or 'filtered'", net.mode));
  if (net.mode == "off" && !net.publish.empty())
    throw Error("--publish needs a network: add --network user");
  if (net.mode == "filtered" && !net.publish.empty())
    throw Error("--publish works with --network user only (the filter admits no inbound connections)");
  if (net.mode != "filtered" && (!net.allow.empty() || !net.default_allow || !net.allow_ports.empty() ||
                                 !net.egress_log.empty() || !net.dns_upstream.empty() || net.allow_host_loopback))
    throw Error("--allow, --no-default-allow, --allow-port, --egress-log, --dns-upstream and --allow-host-loopback "
                "need --network filtered");
  for (const auto& a : net.allow) parse_allow_name(a);
  for (const uint16_t p : net.allow_ports)
    if (p == 0) throw Error("--allow-port 0: use 1-65535");

  std::set<std::pair<std::string, uint16_t>> seen;
  for (const auto& p : net.publish)
    if (!seen.emplace(p.host_addr, p.host_port).second)
      throw Error(fmt::format("--publish: {}:{} is published twice", p.host_addr, p.host_port));
}

}  // namespace ksbox
