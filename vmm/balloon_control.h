// The control socket's "balloon" request: the balloon's size, its target,
// what the guest gave back and its memory statistics; sets the target.
//   {"cmd":"balloon"}                 -> {"ok":true,"target_mib":..,"actual_mib":..,...}
//   {"cmd":"balloon","target_mib":N}  -> the same, after asking the guest to
//                                        inflate (or deflate) to N MiB
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace ksbox {

namespace devices::balloon {
class VirtioBalloon;
}

// `balloon` is nullptr when the VM has none (--balloon off); `memory_mib`
// bounds the target. Never throws: bad requests get {"ok":false,"error":..}.
nlohmann::json balloon_request(const nlohmann::json& req, devices::balloon::VirtioBalloon* balloon,
                               uint64_t memory_mib);

}  // namespace ksbox
