// Words of the kernel command line that ksbox-vmm adds for ksbox-agent:
// both sides include this header. "ksbox.shares=TAG,TAG,...": the virtio-fs
// tags the VMM serves; the agent mounts `workspace` on /workspace and every
// other one on /mnt/TAG. ("ksbox.net=": guest-image/agent/net_params.h.)
// "ksbox.root=" / "ksbox.overlay=": the disks the agent makes the root of
// (guest-image/agent/root_disk.h); `ksbox run` names them by serial.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox::protocol {

// The value of the last word starting with `key` (which ends in '='), or
// nullopt when there is none.
inline std::optional<std::string_view> last_param(std::string_view cmdline, std::string_view key) {
  std::optional<std::string_view> value;
  size_t pos = 0;
  while (pos < cmdline.size()) {
    const size_t end = std::min(cmdline.find_first_of(" \t\n", pos), cmdline.size());
    const std::string_view word = cmdline.substr(pos, end - pos);
    if (word.starts_with(key)) value = word.substr(key.size());
    pos = end + 1;
  }
  return value;
}

inline constexpr std::string_view kSharesParam = "ksbox.shares=";

inline constexpr std::string_view kRootParam = "ksbox.root=";
inline constexpr std::string_view kOverlayParam = "ksbox.overlay=";
// A disk named by its virtio-blk serial ("serial:ID") rather than by the
// /dev/vdX name its place in the --disk order gives it.
inline constexpr std::string_view kSerialPrefix = "serial:";
// The serials `ksbox run` gives the shared base and the sandbox's layer.
inline constexpr std::string_view kRootDiskSerial = "ksbox-root";
inline constexpr std::string_view kLayerDiskSerial = "ksbox-layer";

// A tag that is safe as a directory name: 1..36 of [A-Za-z0-9._-], not "."
// or "..". The VMM only announces such tags.
inline bool is_mountable_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 36 || tag == "." || tag == "..") return false;
  return std::all_of(tag.begin(), tag.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

// The mountable tags of the last ksbox.shares= word, in order, without
// duplicates; others are dropped.
inline std::vector<std::string> parse_share_tags(std::string_view cmdline) {
  std::vector<std::string> tags;
  const auto value = last_param(cmdline, kSharesParam);
  if (!value) return tags;
  size_t pos = 0;
  while (pos <= value->size()) {
    const size_t end = std::min(value->find(',', pos), value->size());
    const std::string_view tag = value->substr(pos, end - pos);
    if (is_mountable_tag(tag) && std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.emplace_back(tag);
    pos = end + 1;
  }
  return tags;
}

}  // namespace ksbox::protocol
