// C layouts of KVM's variable-length ioctl arguments. Debian 12's uapi headers
// declare their flexible arrays with __DECLARE_FLEX_ARRAY, which in C++ adds an
// empty struct (sizeof 1): kvm_cpuid2 grows to 12 bytes with entries at offset
// 12, kvm_msrs to 16 with entries at 16, and the ioctl numbers (which encode
// the size) change. So we use these headers and request numbers instead.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace ksbox::kvm_abi {

struct CpuidHeader {  // struct kvm_cpuid2 without its entries
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs without its entries
  uint32_t nmsrs;
  uint32_t pad;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);

}  // namespace ksbox::kvm_abi
