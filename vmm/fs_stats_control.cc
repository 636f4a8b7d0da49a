#include "vmm/fs_stats_control.h"

#include <string>

#include "devices/fs/virtio_fs.h"

namespace ksbox {

nlohmann::json fs_stats_reply(const std::vector<devices::fs::VirtioFs*>& shares) {
  using nlohmann::json;
  namespace fs = devices::fs;
  json list = json::array();
  for (fs::VirtioFs* share : shares) {
    const fs::FuseStats st = share->fuse_stats();
    json ops = json::object();
    for (size_t op = 0; op < st.ops.size(); ++op) {
      if (st.ops[op].count == 0) continue;
      const char* name = op + 1 < st.ops.size() ? fs::fuse_opcode_name(static_cast<uint32_t>(op)) : nullptr;
      ops[name ? std::string(name) : "opcode-" + std::to_string(op)] = {{"count", st.ops[op].count},
                                                                       {"host_us", st.ops[op].est_ns() / 1000}};
    }
    json malformed = json::object();
    for (size_t m = 0; m < st.malformed.size(); ++m)
      if (st.malformed[m]) malformed[fs::to_string(static_cast<fs::Malformed>(m))] = st.malformed[m];
    list.push_back({{"tag", share->tag()},
                    {"requests", st.requests},
                    {"refused", share->requests_refused()},
                    {"polled", share->requests_polled()},
                    {"unsupported", st.unsupported},
                    {"malformed", malformed},
                    {"ops", ops}});
  }
  return {{"ok", true}, {"shares", list}};
}

}  // namespace ksbox
