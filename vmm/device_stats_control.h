// The control socket's "devices" request: per virtio-mmio device, in slot
// order, the register accesses that exited to the VMM and whether the guest
// reads the registers from a register page. For seeing what a workload
// costs in exits besides its requests.
//   {"cmd":"devices"} -> {"ok":true,"devices":[{"slot":0,"type":4,"activated":true,
//                         "register_page":true,"reads":N,"writes":N,"malformed":N,
//                         "refused":N},..]}
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

namespace ksbox {

namespace devices::virtio {
class MmioTransport;
}

// Never throws.
nlohmann::json device_stats_reply(const std::vector<const devices::virtio::MmioTransport*>& transports);

}  // namespace ksbox
