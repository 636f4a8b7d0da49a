#include "vmm/x86/cpu.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "vmm/error.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

constexpr uint32_t kLeafFeatures = 0x1, kLeafCache = 0x4, kLeafTopology = 0xb, kLeafTopologyV2 = 0x1f,
                   kLeafAmdSize = 0x80000008, kLeafAmdTopology = 0x8000001e;
constexpr uint32_t kEcxHypervisor = 1u << 31;
constexpr uint32_t kEdxHtt = 1u << 28;
constexpr uint32_t kTopologySmt = 1, kTopologyCore = 2;

// Bits needed to number `n` items (x2APIC id shift width).
uint32_t id_bits(unsigned n) { return n <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(n - 1u)); }

void topology_leaf(kvm_cpuid_entry2& e, unsigned index, unsigned count) {
  e.edx = index;
  switch (e.index) {
    case 0:  // SMT level: one thread per core
      e.eax = 0, e.ebx = 1, e.ecx = (kTopologySmt << 8) | 0;
      break;
    case 1:  // core level: `count` cores in the package
      e.eax = id_bits(count), e.ebx = count, e.ecx = (kTopologyCore << 8) | 1;
      break;
    default:  // no further levels
      e.eax = 0, e.ebx = 0, e.ecx = e.index;
  }
}

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff000000) << 32) | ((uint64_t{flags} & 0xf0ff) << 40) |
         ((uint64_t{limit} & 0x000f0000) << 32) | ((uint64_t{base} & 0x00ffffff) << 16) |
         (uint64_t{limit} & 0x0000ffff);
}

kvm_segment segment(uint16_t selector, uint8_t type, bool code64) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = code64 ? 0 : 1;
  s.s = 1;
  s.l = code64 ? 1 : 0;
  s.g = 1;
  return s;
}

}  // namespace

std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(const std::vector<kvm_cpuid_entry2>& supported,
                                             unsigned index, unsigned count) {
  if (count == 0 || index >= count) throw Error("cpuid: vCPU index out of range");
  std::vector<kvm_cpuid_entry2> out = supported;
  for (auto& e : out) {
    switch (e.function) {
      case kLeafFeatures:
        e.ebx = (e.ebx & 0x0000ffff) | (count << 16) | (index << 24);
        e.ecx |= kEcxHypervisor;
        if (count > 1) e.edx |= kEdxHtt;
        break;
      case kLeafCache:
        if (e.eax & 0x1f) {  // a real cache descriptor
          const uint32_t level = (e.eax >> 5) & 0x7;
          const uint32_t sharing = level >= 3 ? count - 1 : 0;
          e.eax = (e.eax & 0x3fff) | (std::min(sharing, 0xfffu) << 14) | (std::min(count - 1, 63u) << 26);
        }
        break;
      case kLeafTopology:
      case kLeafTopologyV2:
        topology_leaf(e, index, count);
        break;
      case kLeafAmdSize:
        e.ecx = (id_bits(count) << 12) | (count - 1);
        break;
      case kLeafAmdTopology:
        e.eax = index;
        e.ebx = index & 0xff;  // core id; threads per core - 1 = 0
        e.ecx = 0;             // node 0, one node
        break;
      default:
        break;
    }
  }
  return out;
}

void advertise_tsc_deadline(std::vector<kvm_cpuid_entry2>& cpuid) {
  constexpr uint32_t kEcxTscDeadline = 1u << 24;
  for (auto& e : cpuid)
    if (e.function == kLeafFeatures) e.ecx |= kEcxTscDeadline;
}

std::vector<kvm_msr_entry> boot_msrs() {
  constexpr uint32_t kSysenterCs = 0x174, kSysenterEsp = 0x175, kSysenterEip = 0x176,
                     kStar = 0xc0000081, kLstar = 0xc0000082, kCstar = 0xc0000083,
                     kSyscallMask = 0xc0000084, kKernelGsBase = 0xc0000102, kTsc = 0x10,
                     kMiscEnable = 0x1a0, kMtrrDefType = 0x2ff;
  constexpr uint64_t kFastStrings = 1, kMtrrEnable = 1 << 11, kWriteBack = 6;
  auto msr = [](uint32_t index, uint64_t data) {
    kvm_msr_entry e{};
    e.index = index;
    e.data = data;
    return e;
  };
  return {msr(kSysenterCs, 0),   msr(kSysenterEsp, 0),   msr(kSysenterEip, 0),
          msr(kStar, 0),         msr(kLstar, 0),         msr(kCstar, 0),
          msr(kSyscallMask, 0),  msr(kKernelGsBase, 0),  msr(kTsc, 0),
          msr(kMiscEnable, kFastStrings), msr(kMtrrDefType, kMtrrEnable | kWriteBack)};
}

void write_boot_tables(const GuestMemory& mem) {
  // Null, null, code (0x10), data (0x18), TSS (0x20): the boot protocol's selectors.
  const uint64_t gdt[] = {0, 0, gdt_entry(0xa09b, 0, 0xfffff), gdt_entry(0xc093, 0, 0xfffff),
                          gdt_entry(0x808b, 0, 0xfffff)};
  if (!mem.write_obj(GuestAddress(kGdtAddr), gdt) || !mem.write_obj(GuestAddress(kIdtAddr), uint64_t{0}))
    throw Error("guest RAM too small for the GDT");

  constexpr uint64_t kPresent = 1, kWritable = 2, kHuge = 0x80, kPage = 4096;
  auto pml4 = mem.slice_or_throw(GuestAddress(kPml4Addr), kPage, "PML4");
  auto pdpt = mem.slice_or_throw(GuestAddress(kPdptAddr), kPage, "PDPT");
  auto pd = mem.slice_or_throw(GuestAddress(kPdAddr), kIdentityMappedGiB * kPage, "page directory");
  std::memset(pml4.data(), 0, kPage);
  std::memset(pdpt.data(), 0, kPage);
  const uint64_t pml4e = kPdptAddr | kPresent | kWritable;
  std::memcpy(pml4.data(), &pml4e, 8);
  for (uint64_t g = 0; g < kIdentityMappedGiB; ++g) {
    const uint64_t pdpte = (kPdAddr + g * kPage) | kPresent | kWritable;
    std::memcpy(pdpt.data() + g * 8, &pdpte, 8);
    for (uint64_t i = 0; i < 512; ++i) {
      const uint64_t pde = ((g << 30) + (i << 21)) | kPresent | kWritable | kHuge;
      std::memcpy(pd.data() + (g * 512 + i) * 8, &pde, 8);
    }
  }
}

kvm_sregs long_mode_sregs(kvm_sregs s) {
  constexpr uint64_t kCr0Pe = 1, kCr0Et = 0x10, kCr0Ne = 0x20, kCr0Pg = 1ull << 31;
  constexpr uint64_t kCr4Pae = 0x20;
  constexpr uint64_t kEferLme = 0x100, kEferLma = 0x400;

  s.gdt.base = kGdtAddr;
  s.gdt.limit = 5 * 8 - 1;
  s.idt.base = kIdtAddr;
  s.idt.limit = 7;
  s.cs = segment(kBootCodeSelector, 0xb, true);
  s.ds = s.es = s.fs = s.gs = s.ss = segment(kBootDataSelector, 0x3, false);
  s.tr = segment(kBootTssSelector, 0xb, false);
  s.tr.s = 0;
  s.tr.db = 0;
  s.cr0 = kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg;
  s.cr3 = kPml4Addr;
  s.cr4 = kCr4Pae;
  s.efer = kEferLme | kEferLma;
  return s;
}

kvm_regs boot_regs(uint64_t entry, uint64_t boot_params) {
  kvm_regs r{};
  r.rflags = 0x2;
  r.rip = entry;
  r.rsp = r.rbp = kBootStackTop;
  r.rsi = boot_params;
  return r;
}

kvm_fpu boot_fpu() {
  kvm_fpu f{};
  f.fcw = 0x37f;
  f.mxcsr = 0x1f80;
  return f;
}

kvm_lapic_state boot_lapic(kvm_lapic_state l) {
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kModeExtInt = 0x7, kModeNmi = 0x4;
  auto set_mode = [&](size_t reg, uint32_t mode) {
    uint32_t v;
    std::memcpy(&v, l.regs + reg, 4);
    v = (v & ~0x700u) | (mode << 8);
    std::memcpy(l.regs + reg, &v, 4);
  };
  set_mode(kLvtLint0, kModeExtInt);
  set_mode(kLvtLint1, kModeNmi);
  return l;
}

}  // namespace ksbox::x86
