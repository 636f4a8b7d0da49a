// What one ksbox-vmm process runs: validated before anything is created.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/network_config.h"

namespace ksbox {

// A host directory shared with the guest over virtio-fs, mounted there with
// `mount -t virtiofs TAG DIR`.
struct ShareConfig {
  std::string tag;       // 1..36 bytes, printable (virtio 1.2 §5.11)
  std::string host_dir;  // an existing directory
  bool read_only = false;
  std::string cache;  // never|auto|always|worktree; empty: --share-cache
  bool operator==(const ShareConfig&) const = default;
};

// A raw disk image given to the guest over virtio-blk: /dev/vda, vdb, ... in
// the order given.
struct DiskConfig {
  std::string path;
  bool read_only = false;
  std::string serial;  // up to 20 printable ASCII bytes; /sys/block/vdX/serial
  bool operator==(const DiskConfig&) const = default;
};

inline constexpr size_t kMaxShareTagBytes = 36;
// Free virtio-mmio slots (IRQs 5..23; rng, vsock, net and balloon take four)
// leave room for more, but a handful is all a sandbox needs.
inline constexpr size_t kMaxShares = 4;
inline constexpr size_t kMaxDisks = 4;
// --fs-poll-us: a spin longer than this is a CPU burnt, not a kick saved.
inline constexpr unsigned kMaxFsPollUs = 10000;
// virtio-mmio slots, one per I/O APIC pin 5..23 (0..4 are the legacy
// devices' lines; see x86::kIoapicPins).
inline constexpr size_t kVirtioSlots = 19;

// Parses `PATH[:ro|:rw][,serial=ID]` (the --disk argument); throws Error.
DiskConfig parse_disk(std::string_view arg);
inline constexpr size_t kMaxDiskSerialBytes = 20;  // VIRTIO_BLK_ID_BYTES
// Throws Error unless `serial` is at most 20 printable ASCII bytes, no spaces.
void validate_disk_serial(std::string_view serial);

// Parses `TAG=HOSTDIR[:ro|:rw][,cache=POLICY]` (the --share argument);
// throws Error. Only the syntax is checked here; validate() checks the rest.
ShareConfig parse_share(std::string_view arg);
// The share cache policies (devices/fs/passthrough.h's CachePolicy), as
// --share-cache and ",cache=" take them.
inline constexpr std::array<std::string_view, 4> kShareCachePolicies = {"never", "auto", "always", "worktree"};
// Whether `s` names one of them.
bool is_share_cache_policy(std::string_view s);
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
  // For every share without its own: the guest's cache policy (never|auto|
  // always|worktree) and the
  // file I/O engine (auto|io_uring|sync); checked where they are parsed.
  std::string share_cache = "auto";
  std::string fs_io = "auto";
  // How long each share's device thread watches the request queue after a
  // request, and the guest's sender of a request its used ring (0: not at
  // all); at most kMaxFsPollUs.
  unsigned fs_poll_us = 1000;
  // Supervision by the ksbox CLI: the control socket ("" = none) and the
  // name it reports.
  std::string control_path;
  std::string name;
  std::vector<DiskConfig> disks;  // one virtio-blk device each, in order
  std::string blk_io = "auto";    // auto|io_uring|sync for every disk
  NetworkConfig network;  // virtio-net, checked by validate_network()
  // virtio-balloon: freed guest memory goes back to the host (free page
  // reporting), and the control socket can set a balloon target.
  bool balloon = true;
};

// The virtio-mmio slots `cfg` needs (rng, vsock, shares, disks, net, balloon).
size_t virtio_slots_needed(const MachineConfig& cfg);

// Throws Error with an actionable message; `host_memory_mib` and
// `kvm_max_vcpus` are the host's limits (0 = unknown).
void validate(const MachineConfig& cfg, uint64_t host_memory_mib, unsigned kvm_max_vcpus);
// The vCPU part alone, once KVM's limit is known.
void validate_vcpus(unsigned vcpus, unsigned kvm_max_vcpus);

// MemTotal from /proc/meminfo in MiB, 0 if unreadable.
uint64_t host_memory_mib();

}  // namespace ksbox
