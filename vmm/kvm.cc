#include "vmm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cstring>
#include <algorithm>

#include <fmt/format.h>

#include "vmm/error.h"
#include "vmm/kvm_abi.h"
#include "vmm/kvm_required_caps.h"

namespace ksbox {
namespace {

template <typename... Args>
int xioctl(int fd, unsigned long req, Args... args) {
  int r;
  do r = ::ioctl(fd, req, args...);
  while (r < 0 && errno == EINTR);
  return r;
}

// A header immediately followed by `n` entries, as the variable-length
// ioctls expect (see kvm_abi.h for why not the uapi structs).
template <typename Header, typename Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(size_t n) : words_((sizeof(Header) + n * sizeof(Entry) + 7) / 8) {}
  Header* header() { return reinterpret_cast<Header*>(words_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(reinterpret_cast<char*>(words_.data()) + sizeof(Header)); }
  void* data() { return words_.data(); }

 private:
  std::vector<uint64_t> words_;  // 8-aligned: kvm_msr_entry holds u64s
};

}  // namespace

Kvm Kvm::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    if (err == ENOENT)
      throw Error(fmt::format("{} does not exist: load the kvm module (modprobe kvm-intel or kvm-amd) "
                              "and enable virtualization in the firmware",
                              path));
    if (err == EACCES || err == EPERM)
      throw Error(fmt::format("permission denied opening {}: add your user to the 'kvm' group "
                              "(sudo usermod -aG kvm $USER, then log in again)",
                              path));
    throw Error(fmt::format("cannot open {}: {}", path, std::strerror(err)));
  }
  const int version = xioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION)
    throw Error(fmt::format("{} speaks KVM API {}, ksbox-vmm needs {}", path, version, KVM_API_VERSION));
  Kvm kvm(std::move(fd));
  for (auto [cap, name] : kRequiredKvmCaps) {
    if (kvm.check_extension(cap) <= 0)
      throw Error(fmt::format("this kernel's KVM lacks {} which ksbox-vmm needs", name));
  }
  return kvm;
}

int Kvm::check_extension(long cap) const {
  return xioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
}

size_t Kvm::vcpu_mmap_size() const {
  const int size = xioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size <= 0) throw_errno("KVM_GET_VCPU_MMAP_SIZE");
  return static_cast<size_t>(size);
}

std::vector<kvm_cpuid_entry2> Kvm::supported_cpuid() const {
  for (size_t n = 128; n <= 4096; n *= 2) {
    FlexBuffer<kvm_abi::CpuidHeader, kvm_cpuid_entry2> buf(n);
    buf.header()->nent = static_cast<uint32_t>(n);
    if (xioctl(fd_.get(), kvm_abi::kGetSupportedCpuid, buf.data()) == 0)
      return {buf.entries(), buf.entries() + std::min<size_t>(buf.header()->nent, n)};
    if (errno != E2BIG) throw_errno("KVM_GET_SUPPORTED_CPUID");
  }
  throw Error("KVM_GET_SUPPORTED_CPUID: too many entries");
}

Vm Kvm::create_vm() const {
  int fd;
  do fd = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_errno("KVM_CREATE_VM");
  return Vm(UniqueFd(fd));
}

void Vm::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                                uint32_t flags) const {
  kvm_userspace_memory_region r{};
  r.flags = flags;
  r.slot = slot;
  r.guest_phys_addr = guest_phys;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (xioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &r) < 0) throw_errno("KVM_SET_USER_MEMORY_REGION");
}

void Vm::set_tss_addr(uint64_t addr) const {
  if (xioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0)
    throw_errno("KVM_SET_TSS_ADDR");
}

void Vm::set_identity_map_addr(uint64_t addr) const {
  if (xioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) throw_errno("KVM_SET_IDENTITY_MAP_ADDR");
}

void Vm::create_irqchip() const {
  if (xioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) throw_errno("KVM_CREATE_IRQCHIP");
}

void Vm::create_pit2() const {
  kvm_pit_config cfg{};
  cfg.flags = KVM_PIT_SPEAKER_DUMMY;
  if (xioctl(fd_.get(), KVM_CREATE_PIT2, &cfg) < 0) throw_errno("KVM_CREATE_PIT2");
}

void Vm::register_irqfd(int eventfd, uint32_t gsi) const {
  kvm_irqfd req{};
  req.fd = static_cast<uint32_t>(eventfd);
  req.gsi = gsi;
  if (xioctl(fd_.get(), KVM_IRQFD, &req) < 0) throw_errno(fmt::format("KVM_IRQFD gsi {}", gsi));
}

void Vm::register_ioeventfd(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch) const {
  kvm_ioeventfd req{};
  req.datamatch = datamatch;
  req.addr = addr;
  req.len = len;
  req.fd = eventfd;
  req.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (xioctl(fd_.get(), KVM_IOEVENTFD, &req) < 0) throw_errno(fmt::format("KVM_IOEVENTFD at {:#x}", addr));
}

Vcpu Vm::create_vcpu(unsigned long id, size_t mmap_size) const {
  int fd;
  do fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, id);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_errno(fmt::format("KVM_CREATE_VCPU {}", id));
  UniqueFd vfd(fd);
  auto run = MmapRegion::shared_fd(vfd.get(), mmap_size);
  return Vcpu(std::move(vfd), std::move(run), id);
}

int Vcpu::run() const {
  return ::ioctl(fd_.get(), KVM_RUN, 0) < 0 ? -errno : 0;
}

kvm_regs Vcpu::get_regs() const {
  kvm_regs r{};
  if (xioctl(fd_.get(), KVM_GET_REGS, &r) < 0) throw_errno("KVM_GET_REGS");
  return r;
}

void Vcpu::set_regs(const kvm_regs& r) const {
  if (xioctl(fd_.get(), KVM_SET_REGS, &r) < 0) throw_errno("KVM_SET_REGS");
}

kvm_sregs Vcpu::get_sregs() const {
  kvm_sregs s{};
  if (xioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) throw_errno("KVM_GET_SREGS");
  return s;
}

void Vcpu::set_sregs(const kvm_sregs& s) const {
  if (xioctl(fd_.get(), KVM_SET_SREGS, &s) < 0) throw_errno("KVM_SET_SREGS");
}

void Vcpu::set_fpu(const kvm_fpu& f) const {
  if (xioctl(fd_.get(), KVM_SET_FPU, &f) < 0) throw_errno("KVM_SET_FPU");
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) const {
  FlexBuffer<kvm_abi::CpuidHeader, kvm_cpuid_entry2> buf(entries.size());
  buf.header()->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(buf.entries(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (xioctl(fd_.get(), kvm_abi::kSetCpuid2, buf.data()) < 0) throw_errno("KVM_SET_CPUID2");
}

void Vcpu::set_msrs(const std::vector<kvm_msr_entry>& msrs) const {
  FlexBuffer<kvm_abi::MsrsHeader, kvm_msr_entry> buf(msrs.size());
  buf.header()->nmsrs = static_cast<uint32_t>(msrs.size());
  std::memcpy(buf.entries(), msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  const int n = xioctl(fd_.get(), kvm_abi::kSetMsrs, buf.data());
  if (n < 0) throw_errno("KVM_SET_MSRS");
  if (static_cast<size_t>(n) != msrs.size())
    throw Error(fmt::format("KVM_SET_MSRS: MSR {:#x} was refused", msrs[static_cast<size_t>(n)].index));
}

kvm_lapic_state Vcpu::get_lapic() const {
  kvm_lapic_state l{};
  if (xioctl(fd_.get(), KVM_GET_LAPIC, &l) < 0) throw_errno("KVM_GET_LAPIC");
  return l;
}

void Vcpu::set_lapic(const kvm_lapic_state& l) const {
  if (xioctl(fd_.get(), KVM_SET_LAPIC, &l) < 0) throw_errno("KVM_SET_LAPIC");
}

}  // namespace ksbox
