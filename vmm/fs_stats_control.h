// The control socket's "fs" request: per share, the FUSE requests served
// since the VMM started, by opcode with the host time they took (estimated
// from every 8th request of the opcode, see FuseStats), and the malformed
// ones by reason. For finding where a workload's file-system time
// goes (each request is a guest exit and an interrupt).
//   {"cmd":"fs"} -> {"ok":true,"shares":[{"tag":"workspace","requests":N,
//                    "refused":N,"unsupported":N,"malformed":{"bad name":N,..},
//                    "ops":{"LOOKUP":{"count":N,"host_us":N},..}},..]}
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

namespace ksbox {

namespace devices::fs {
class VirtioFs;
}

// Never throws; no shares gives an empty list.
nlohmann::json fs_stats_reply(const std::vector<devices::fs::VirtioFs*>& shares);

}  // namespace ksbox
