// What one ksbox-vmm process runs: validated before anything is created.
#pragma once

#include <cstdint>
#include <string>

namespace ksbox {

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
};

// Throws Error with an actionable message; `host_memory_mib` and
// `kvm_max_vcpus` are the host's limits (0 = unknown).
void validate(const MachineConfig& cfg, uint64_t host_memory_mib, unsigned kvm_max_vcpus);
// The vCPU part alone, once KVM's limit is known.
void validate_vcpus(unsigned vcpus, unsigned kvm_max_vcpus);

// MemTotal from /proc/meminfo in MiB, 0 if unreadable.
uint64_t host_memory_mib();

}  // namespace ksbox
