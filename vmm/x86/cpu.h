// Per-vCPU architectural state for a 64-bit Linux boot: CPUID topology,
// MSRs, long-mode segment and control registers, and the boot page tables.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "vmm/guest_memory.h"

namespace ksbox::x86 {

// KVM's supported CPUID adjusted for vCPU `index` of `count`: APIC ids,
// one socket of `count` single-thread cores, the hypervisor bit.
std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(const std::vector<kvm_cpuid_entry2>& supported,
                                             unsigned index, unsigned count);

// Advertises the TSC-deadline timer (CPUID.1:ECX[24]), which KVM's in-kernel
// LAPIC emulates when KVM_CAP_TSC_DEADLINE_TIMER is present but does not
// report as supported. Spares the guest its LAPIC timer calibration.
void advertise_tsc_deadline(std::vector<kvm_cpuid_entry2>& cpuid);

// MSR values a freshly booted x86_64 CPU has.
std::vector<kvm_msr_entry> boot_msrs();

// Writes the GDT, an empty IDT and identity page tables for the first 4 GiB.
void write_boot_tables(const GuestMemory& mem);

// Long mode, paging on, flat 64-bit segments per the Linux 64-bit boot protocol.
kvm_sregs long_mode_sregs(kvm_sregs base);
kvm_regs boot_regs(uint64_t entry, uint64_t boot_params);
kvm_fpu boot_fpu();
// LINT0 as ExtINT (the PIC), LINT1 as NMI, as firmware leaves them.
kvm_lapic_state boot_lapic(kvm_lapic_state base);

inline constexpr uint16_t kBootCodeSelector = 0x10;  // __BOOT_CS
inline constexpr uint16_t kBootDataSelector = 0x18;  // __BOOT_DS
inline constexpr uint16_t kBootTssSelector = 0x20;

}  // namespace ksbox::x86
