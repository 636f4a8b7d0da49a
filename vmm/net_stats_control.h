// The control socket's "net" request: the virtio-net device's frame counts
// since the VMM started, what it refused or dropped and why, and its
// backend's counters (libslirp's, and the egress filter's in filtered
// mode). For telling a slow or broken network from a hostile or lossy guest.
//   {"cmd":"net"} -> {"ok":true,"network":true,
//                     "tx":{"frames":N,"bytes":N,"refused":{"bad header":N,..}},
//                     "rx":{"frames":N,"bytes":N,"refused_chains":N,
//                           "dropped":{"inactive":N,"backlog":N,"too_big":N}},
//                     "backend":{"slirp_guest_errors":N,..}}
//   With --network off: {"ok":true,"network":false}.
#pragma once

#include <nlohmann/json.hpp>

namespace ksbox {

namespace devices::net {
class VirtioNet;
}

// Never throws; `net` may be nullptr (no network device).
nlohmann::json net_stats_reply(const devices::net::VirtioNet* net);

}  // namespace ksbox
