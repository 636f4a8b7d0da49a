// The guest's network, set up by ksbox-agent as init from what the VMM
// advertised (net_params.h): no DHCP client in the guest.
#pragma once

#include "net_params.h"

namespace ksbox::agent {

// The interface the VMM's virtio-net device becomes (the only one).
inline constexpr const char* kNetInterface = "eth0";

// Reads /proc/cmdline; with a valid ksbox.net= word, gives eth0 its
// address, brings it up, adds the default route through the gateway and
// writes /etc/resolv.conf. Best effort: failures are logged.
void setup_network();

// The ioctls and the resolv.conf of setup_network() for `p`; false (logged) on failure.
bool configure_interface(const char* ifname, const NetParams& p);

}  // namespace ksbox::agent
