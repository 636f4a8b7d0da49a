#include "vmm/machine_config.h"

#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vmm/error.h"
#include "vmm/x86/layout.h"

namespace ksbox {

void validate_vcpus(unsigned vcpus, unsigned kvm_max_vcpus) {
  if (vcpus == 0) throw Error("--vcpus must be at least 1");
  const unsigned max_vcpus = kvm_max_vcpus ? std::min(kvm_max_vcpus, x86::kMaxVcpus) : x86::kMaxVcpus;
  if (vcpus > max_vcpus)
    throw Error(fmt::format("--vcpus {} is more than the {} this host's KVM supports", vcpus, max_vcpus));
}

bool is_share_cache_policy(std::string_view s) {
  return std::ranges::find(kShareCachePolicies, s) != kShareCachePolicies.end();
}

ShareConfig parse_share(std::string_view arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string_view::npos)
    throw Error(fmt::format("--share '{}': expected TAG=HOSTDIR[:ro][,cache=POLICY]", arg));
  ShareConfig share{std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1)), false, {}};
  // As --disk: the option list starts at the last ",cache=" (a directory
  // name may contain commas), and the ":ro" suffix wins over a directory
  // name ending in ":ro", which needs a trailing ":rw".
  if (const size_t comma = share.host_dir.rfind(",cache="); comma != std::string::npos) {
    share.cache = share.host_dir.substr(comma + 7);
    share.host_dir.resize(comma);
    if (!is_share_cache_policy(share.cache))
      throw Error(fmt::format("--share '{}': cache policy '{}': valid values are {}", arg, share.cache,
                              fmt::join(kShareCachePolicies, ", ")));
  }
  if (share.host_dir.ends_with(":ro") || share.host_dir.ends_with(":rw")) {
    share.read_only = share.host_dir.ends_with(":ro");
    share.host_dir.resize(share.host_dir.size() - 3);
  }
  if (share.host_dir.empty()) throw Error(fmt::format("--share '{}': no host directory after '='", arg));
  validate_share_tag(share.tag);
  return share;
}

void validate_share_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxShareTagBytes)
    throw Error(fmt::format("--share tag '{}' is {} bytes; a virtio-fs tag has 1 to {}", tag, tag.size(),
                            kMaxShareTagBytes));
  for (const char c : tag) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f)
      throw Error(fmt::format("--share tag '{}' contains a control character", tag));
  }
}

DiskConfig parse_disk(std::string_view arg) {
  DiskConfig disk;
  std::string_view path = arg;
  // The option list starts at the last ",serial=": a path may contain commas.
  if (const size_t comma = arg.rfind(",serial="); comma != std::string_view::npos) {
    path = arg.substr(0, comma);
    disk.serial = std::string(arg.substr(comma + 8));
    if (disk.serial.empty()) throw Error(fmt::format("--disk '{}': empty serial", arg));
  }
  if (path.ends_with(":ro") || path.ends_with(":rw")) {
    disk.read_only = path.ends_with(":ro");
    path.remove_suffix(3);
  }
  if (path.empty()) throw Error(fmt::format("--disk '{}': no image path", arg));
  disk.path = std::string(path);
  validate_disk_serial(disk.serial);
  return disk;
}

void validate_disk_serial(std::string_view serial) {
  if (serial.size() > kMaxDiskSerialBytes)
    throw Error(fmt::format("disk serial '{}' is {} bytes; at most {} fit", serial, serial.size(),
                            kMaxDiskSerialBytes));
  for (const char c : serial) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x21 || b > 0x7e) throw Error(fmt::format("disk serial '{}': only printable ASCII, no spaces", serial));
  }
}

size_t virtio_slots_needed(const MachineConfig& cfg) {
  return 1 + (cfg.vsock_path.empty() ? 0 : 1) + cfg.shares.size() + cfg.disks.size() +
         (cfg.network.mode == "off" ? 0 : 1) + (cfg.balloon ? 1 : 0);
}

namespace {

void validate_disks(const std::vector<DiskConfig>& disks) {
  if (disks.size() > kMaxDisks)
    throw Error(fmt::format("{} --disk options; at most {} are supported", disks.size(), kMaxDisks));
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const auto& d : disks) {
    struct stat st {};
    if (::stat(d.path.c_str(), &st) < 0)
      throw Error(fmt::format("--disk '{}': {}", d.path, std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) throw Error(fmt::format("--disk '{}' is not a regular file (a raw image)", d.path));
    if (!seen.insert({st.st_dev, st.st_ino}).second)
      throw Error(fmt::format("--disk '{}' is given twice", d.path));
  }
}

void validate_shares(const std::vector<ShareConfig>& shares) {
  if (shares.size() > kMaxShares)
    throw Error(fmt::format("{} --share options; at most {} are supported", shares.size(), kMaxShares));
  std::set<std::string_view> tags;
  for (const auto& s : shares) {
    validate_share_tag(s.tag);
    if (!tags.insert(s.tag).second) throw Error(fmt::format("--share tag '{}' is used twice", s.tag));
    struct stat st {};
    if (::stat(s.host_dir.c_str(), &st) < 0)
      throw Error(fmt::format("--share {}: cannot use '{}': {}", s.tag, s.host_dir, std::strerror(errno)));
    if (!S_ISDIR(st.st_mode))
      throw Error(fmt::format("--share {}: '{}' is not a directory", s.tag, s.host_dir));
  }
}

}  // namespace

void validate(const MachineConfig& cfg, uint64_t host_mib, unsigned kvm_max_vcpus) {
  if (cfg.kernel.empty()) throw Error("no kernel given (--kernel PATH)");
  validate_vcpus(cfg.vcpus, kvm_max_vcpus);
  if (cfg.memory_mib < x86::kMinMemoryMiB)
    throw Error(fmt::format("--memory {} MiB is below the minimum of {} MiB", cfg.memory_mib,
                            x86::kMinMemoryMiB));
  if (host_mib && cfg.memory_mib > host_mib)
    throw Error(fmt::format("--memory {} MiB is more than the host's {} MiB", cfg.memory_mib, host_mib));
  if (cfg.memory_mib > (1ull << 24))  // 16 TiB: beyond any x86 guest we build
    throw Error(fmt::format("--memory {} MiB is absurd", cfg.memory_mib));
  // 0-2 are the hypervisor, loopback and host; 0xffffffff is VMADDR_CID_ANY.
  if (cfg.guest_cid < 3 || cfg.guest_cid == 0xffffffff)
    throw Error(fmt::format("--cid {} is reserved: use 3 .. {}", cfg.guest_cid, 0xfffffffeu));
  if (cfg.vsock_path.size() >= sizeof(sockaddr_un::sun_path))
    throw Error(fmt::format("--vsock path is {} bytes; a Unix socket path must be shorter than {}",
                            cfg.vsock_path.size(), sizeof(sockaddr_un::sun_path)));
  validate_shares(cfg.shares);
  validate_disks(cfg.disks);
  validate_network(cfg.network);
  if (virtio_slots_needed(cfg) > kVirtioSlots)
    throw Error(fmt::format("this machine needs {} virtio devices (rng, vsock, shares, disks, net, balloon); it has {} slots",
                            virtio_slots_needed(cfg), kVirtioSlots));
}

uint64_t host_memory_mib() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemTotal:") return kib / 1024;
  return 0;
}

}  // namespace ksbox
