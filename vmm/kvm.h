// RAII handles for /dev/kvm, a VM and its vCPUs. Thin: one method per ioctl we use.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/mmap_region.h"
#include "vmm/unique_fd.h"

namespace ksbox {

class Vcpu;
class Vm;

class Kvm {
 public:
  // Opens the device; errors say what to fix (missing module, permissions).
  static Kvm open(const std::string& path = "/dev/kvm");

  int check_extension(long cap) const;
  size_t vcpu_mmap_size() const;
  std::vector<kvm_cpuid_entry2> supported_cpuid() const;
  Vm create_vm() const;
  int fd() const { return fd_.get(); }

 private:
  explicit Kvm(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

class Vm {
 public:
  void set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                              uint32_t flags = 0) const;
  void set_tss_addr(uint64_t addr) const;
  void set_identity_map_addr(uint64_t addr) const;
  void create_irqchip() const;
  void create_pit2() const;
  // Routes a write to `eventfd` into an edge on `gsi` (no userspace exit).
  void register_irqfd(int eventfd, uint32_t gsi) const;
  // Guest writes of `datamatch` (`len` bytes) to MMIO `addr` signal `eventfd`
  // inside KVM, without an exit to userspace.
  void register_ioeventfd(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch) const;
  Vcpu create_vcpu(unsigned long id, size_t mmap_size) const;
  int fd() const { return fd_.get(); }

 private:
  friend class Kvm;
  explicit Vm(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

class Vcpu {
 public:
  // KVM_RUN; returns 0, or -errno (EINTR/EAGAIN are normal).
  int run() const;
  kvm_run* run_data() const { return reinterpret_cast<kvm_run*>(run_.data()); }
  size_t run_size() const { return run_.size(); }

  kvm_regs get_regs() const;
  void set_regs(const kvm_regs& r) const;
  kvm_sregs get_sregs() const;
  void set_sregs(const kvm_sregs& s) const;
  void set_fpu(const kvm_fpu& f) const;
  void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) const;
  void set_msrs(const std::vector<kvm_msr_entry>& msrs) const;
  kvm_lapic_state get_lapic() const;
  void set_lapic(const kvm_lapic_state& l) const;
  unsigned long id() const { return id_; }

 private:
  friend class Vm;
  Vcpu(UniqueFd fd, MmapRegion run, unsigned long id)
      : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}
  UniqueFd fd_;
  MmapRegion run_;
  unsigned long id_;
};

}  // namespace ksbox
