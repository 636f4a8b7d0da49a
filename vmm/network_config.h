// The guest's network as ksbox-vmm's options describe it: the mode and the
// ports published from the host into the guest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox {

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
  // gateway address.
  std::string mode = "off";
  std::vector<PublishConfig> publish;
};

// Throws Error: an unknown mode, --publish without a network, or one host
// address and port published twice.
void validate_network(const NetworkConfig& net);

}  // namespace ksbox
