// What one ksbox-vmm process runs: validated before anything is created.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox {

// A host directory shared with the guest over virtio-fs, mounted there with
// `mount -t virtiofs TAG DIR`.
struct ShareConfig {
  std::string tag;       // 1..36 bytes, printable (virtio 1.2 §5.11)
  std::string host_dir;  // an existing directory
  bool read_only = false;
  bool operator==(const ShareConfig&) const = default;
};

inline constexpr size_t kMaxShareTagBytes = 36;
// Free virtio-mmio slots (IRQs 5..15, rng and vsock take two) leave room for
// more, but a handful is all a sandbox needs.
inline constexpr size_t kMaxShares = 4;

// Parses `TAG=HOSTDIR[:ro|:rw]` (the --share argument); throws Error. Only
// the syntax is checked here; validate() checks the rest.
ShareConfig parse_share(std::string_view arg);
// Throws Error unless `tag` is 1..36 bytes of printable characters (UTF-8
// allowed; no control characters, no NUL).
void validate_share_tag(std::string_view tag);

struct MachineConfig {
  std::string kernel;
  std::string initrd;  // optional
  std::string cmdline;
  unsigned vcpus = 1;
  uint64_t memory_mib = 256;
  std::string console = "-";  // "-" = stdout, else a log file (appended)
  std::string kvm_device = "/dev/kvm";
  // virtio-vsock: the host Unix socket ("" = no vsock device) and the guest's CID.
  std::string vsock_path;
  uint32_t guest_cid = 3;
  std::vector<ShareConfig> shares;  // one virtio-fs device each, in order
  // For every share: the guest's cache policy (never|auto|always) and the
  // file I/O engine (auto|io_uring|sync); checked where they are parsed.
  std::string share_cache = "auto";
  std::string fs_io = "auto";
  // Supervision by the ksbox CLI: the control socket ("" = none) and the
  // name it reports.
  std::string control_path;
  std::string name;
};

// Throws Error with an actionable message; `host_memory_mib` and
// `kvm_max_vcpus` are the host's limits (0 = unknown).
void validate(const MachineConfig& cfg, uint64_t host_memory_mib, unsigned kvm_max_vcpus);
// The vCPU part alone, once KVM's limit is known.
void validate_vcpus(unsigned vcpus, unsigned kvm_max_vcpus);

// MemTotal from /proc/meminfo in MiB, 0 if unreadable.
uint64_t host_memory_mib();

}  // namespace ksbox
