#include "vmm/balloon_control.h"

#include <linux/virtio_balloon.h>

#include <array>
#include <string>

#include "devices/balloon/virtio_balloon.h"

namespace ksbox {
namespace {

using nlohmann::json;
namespace balloon = devices::balloon;

constexpr uint64_t kPagesPerMib = (1u << 20) / balloon::kPageSize;

// Byte-valued statistics in MiB, event counts as they are, by their
// virtio names (VIRTIO_BALLOON_S_NAMES); unknown tags by number.
json stats_json(const std::vector<balloon::BalloonStat>& stats) {
  static constexpr std::array<const char*, VIRTIO_BALLOON_S_NR> kNames = VIRTIO_BALLOON_S_NAMES;
  json out = json::object();
  for (const auto& s : stats) {
    const bool bytes = s.tag <= VIRTIO_BALLOON_S_SWAP_OUT ||
                       (s.tag >= VIRTIO_BALLOON_S_MEMFREE && s.tag <= VIRTIO_BALLOON_S_CACHES);
    const std::string name = s.tag < kNames.size() ? kNames[s.tag] : "tag-" + std::to_string(s.tag);
    if (bytes)
      out[name + "-mib"] = s.val >> 20;
    else
      out[name] = s.val;
  }
  return out;
}

}  // namespace

json balloon_request(const json& req, balloon::VirtioBalloon* b, uint64_t memory_mib) {
  if (!b) return {{"ok", false}, {"error", "this VM has no balloon (ksbox-vmm --balloon off)"}};
  if (req.contains("target_mib")) {
    const auto& t = req["target_mib"];
    if (!t.is_number_unsigned() || t.get<uint64_t>() > memory_mib ||
        t.get<uint64_t>() * kPagesPerMib > UINT32_MAX)
      return {{"ok", false}, {"error", "target_mib must be a whole number of MiB from 0 to the VM's memory"}};
    b->set_target_pages(static_cast<uint32_t>(t.get<uint64_t>() * kPagesPerMib));
  }
  // Fresh numbers arrive shortly after; this reply carries the last ones.
  b->request_stats();
  const auto c = b->counters();
  return {{"ok", true},
          {"target_mib", b->target_pages() / kPagesPerMib},
          {"actual_mib", b->actual_pages() / kPagesPerMib},
          {"inflated_mib", c.inflated_pages / kPagesPerMib},
          {"deflated_mib", c.deflated_pages / kPagesPerMib},
          {"reported_mib", c.reported_pages / kPagesPerMib},
          {"discarded_mib", c.discarded_bytes >> 20},
          {"refused", c.refused},
          {"host_errors", c.host_errors},
          {"stats", stats_json(b->last_stats())}};
}

}  // namespace ksbox
