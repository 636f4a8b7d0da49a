// The guest's network as ksbox-vmm's options describe it: the mode, the
// ports published from the host into the guest, and the egress rules of
// the filtered mode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox {

// A TCP/UDP port 1-65535; throws Error("<context>: '<s>' is not a port ...").
uint16_t parse_port(std::string_view context, std::string_view s);

// --publish [HOSTIP:]HOSTPORT:GUESTPORT: TCP connections to HOSTIP:HOSTPORT
// on the host go to GUESTPORT in the guest.
struct PublishConfig {
  std::string host_addr = "127.0.0.1";  // an IPv4 address of this host
  uint16_t host_port = 0;
  uint16_t guest_port = 0;
  bool operator==(const PublishConfig&) const = default;
};

// Parses the --publish argument; throws Error on bad syntax, addresses or ports.
PublishConfig parse_publish(std::string_view arg);

struct NetworkConfig {
  // "off": no network device at all. "user": virtio-net with the user-mode
  // network (libslirp) in the VMM; the host's loopback is reachable at the
  // gateway address. "filtered": the same network behind the egress filter
  // (devices/net/filtered_backend.h): allowlisted names only, their
  // addresses only, allowed ports only, every attempt logged.
  std::string mode = "off";
  std::vector<PublishConfig> publish;

  // filtered only.
  std::vector<std::string> allow;  // names (suffixes) added to the default allowlist
  bool default_allow = true;       // false: `allow` is the whole list
  std::vector<uint16_t> allow_ports;  // empty: 80 and 443
  std::string egress_log;          // JSON lines of every attempt; "" for none
  std::string dns_upstream;        // IP[:PORT] (checked by main.cc); "" for the host's /etc/resolv.conf
  bool allow_host_loopback = false;  // the gateway reaches the host's 127.0.0.1
};

// The --allow argument as the filter matches it: lowercase, no trailing
// dot; throws Error unless it is a domain name (labels of letters, digits,
// '-' and '_').
std::string parse_allow_name(std::string_view arg);
// The names the filter allows: the defaults (unless !default_allow) and `allow`.
std::vector<std::string> effective_allowlist(const NetworkConfig& net);
// `allow_ports`, or 80 and 443 when none were given.
std::vector<uint16_t> effective_allow_ports(const NetworkConfig& net);

// Throws Error: an unknown mode, --publish without the user network, one
// host address and port published twice, filtered-mode options in another
// mode, a bad name or port.
void validate_network(const NetworkConfig& net);

}  // namespace ksbox
