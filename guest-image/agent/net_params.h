// What the VMM tells the agent about the guest's network: the kernel
// command line word "ksbox.net=ADDRESS/PREFIX,GATEWAY,DNS" (IPv4; the VMM
// adds it only when the guest has a network device).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "guest-image/agent/cmdline_param.h"

namespace ksbox::agent {

struct NetParams {
  in_addr address{};
  unsigned prefix = 0;  // 0..32
  in_addr gateway{};
  in_addr dns{};
};

inline constexpr std::string_view kNetParam = "ksbox.net=";

// The parameters of the last "ksbox.net=" word of `cmdline`; nullopt when
// there is none or it is malformed.
inline std::optional<NetParams> parse_net_params(std::string_view cmdline) {
  const auto value = last_param(cmdline, kNetParam);
  if (!value) return std::nullopt;

  const auto ip = [](std::string_view s, in_addr& out) {
    return s.size() < INET_ADDRSTRLEN && ::inet_pton(AF_INET, std::string(s).c_str(), &out) == 1;
  };
  const size_t slash = value->find('/'), c1 = value->find(',');
  if (slash == std::string_view::npos || c1 == std::string_view::npos || slash > c1) return std::nullopt;
  const size_t c2 = value->find(',', c1 + 1);
  if (c2 == std::string_view::npos) return std::nullopt;
  NetParams p;
  const std::string_view prefix = value->substr(slash + 1, c1 - slash - 1);
  const auto [ptr, ec] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), p.prefix);
  if (prefix.empty() || ec != std::errc() || ptr != prefix.data() + prefix.size() || p.prefix > 32)
    return std::nullopt;
  if (!ip(value->substr(0, slash), p.address) || !ip(value->substr(c1 + 1, c2 - c1 - 1), p.gateway) ||
      !ip(value->substr(c2 + 1), p.dns))
    return std::nullopt;
  return p;
}

}  // namespace ksbox::agent
