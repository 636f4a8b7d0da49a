#include "vmm/network_config.h"

#include <arpa/inet.h>

#include <charconv>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox {
namespace {

uint16_t parse_port(std::string_view arg, std::string_view s) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535)
    throw Error(fmt::format("--publish '{}': '{}' is not a port (1-65535)", arg, s));
  return static_cast<uint16_t>(v);
}

}  // namespace

PublishConfig parse_publish(std::string_view arg) {
  PublishConfig p;
  const size_t last = arg.rfind(':');
  if (last == std::string_view::npos)
    throw Error(fmt::format("--publish '{}': expected [HOSTIP:]HOSTPORT:GUESTPORT", arg));
  p.guest_port = parse_port(arg, arg.substr(last + 1));
  std::string_view host = arg.substr(0, last);
  if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    p.host_addr = std::string(host.substr(0, colon));
    host = host.substr(colon + 1);
    in_addr a{};
    if (::inet_pton(AF_INET, p.host_addr.c_str(), &a) != 1)
      throw Error(fmt::format("--publish '{}': '{}' is not an IPv4 address", arg, p.host_addr));
  }
  p.host_port = parse_port(arg, host);
  return p;
}

void validate_network(const NetworkConfig& net) {
  if (net.mode != "off" && net.mode != "user")
    throw Error(fmt::format("--network '{}': use 'off' or 'user'", net.mode));
  if (net.mode == "off" && !net.publish.empty())
    throw Error("--publish needs a network: add --network user");
  std::set<std::pair<std::string, uint16_t>> seen;
  for (const auto& p : net.publish)
    if (!seen.emplace(p.host_addr, p.host_port).second)
      throw Error(fmt::format("--publish: {}:{} is published twice", p.host_addr, p.host_port));
}

}  // namespace ksbox
