#include "vmm/machine_config.h"

#include <sys/un.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "vmm/error.h"
#include "vmm/x86/layout.h"

namespace ksbox {

void validate_vcpus(unsigned vcpus, unsigned kvm_max_vcpus) {
  if (vcpus == 0) throw Error("--vcpus must be at least 1");
  const unsigned max_vcpus = kvm_max_vcpus ? std::min(kvm_max_vcpus, x86::kMaxVcpus) : x86::kMaxVcpus;
  if (vcpus > max_vcpus)
    throw Error(fmt::format("--vcpus {} is more than the {} this host's KVM supports", vcpus, max_vcpus));
}

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
