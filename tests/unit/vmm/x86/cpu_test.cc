#include "vmm/x86/cpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "test_helpers.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

kvm_cpuid_entry2 leaf(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

// A plausible KVM_GET_SUPPORTED_CPUID answer for the leaves ksbox rewrites.
std::vector<kvm_cpuid_entry2> fake_supported() {
  return {
      leaf(0x0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),  // "GenuineIntel": untouched
      leaf(0x1, 0, 0x000906ea, 0x00000800, 0x00000001, 0x00000001),  // CLFLUSH size 8, SSE3, FPU
      leaf(0xb, 0, 0x1, 0x2, 0x100, 0x55),  // host topology: must be replaced
      leaf(0xb, 1, 0x4, 0x10, 0x201, 0x55),
      leaf(0x80000008, 0, 0x3030, 0, 0xff, 0),
      leaf(0x8000001e, 0, 0x77, 0x77, 0x77, 0),
  };
}

const kvm_cpuid_entry2& find(const std::vector<kvm_cpuid_entry2>& v, uint32_t function, uint32_t index = 0) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& e) { return e.function == function && e.index == index; });
  if (it == v.end()) throw std::runtime_error("leaf missing");
  return *it;
}

TEST(CpuidForVcpuTest, Leaf1CarriesApicIdCountAndHypervisorBit) {
  for (unsigned count : {1u, 4u, 8u}) {
    for (unsigned index = 0; index < count; ++index) {
      SCOPED_TRACE(::testing::Message() << index << "/" << count);
      const auto out = cpuid_for_vcpu(fake_supported(), index, count);
      const auto& l1 = find(out, 0x1);
      EXPECT_EQ(l1.ebx >> 24, index) << "initial APIC id";
      EXPECT_EQ((l1.ebx >> 16) & 0xff, count) << "logical processor count";
      EXPECT_EQ(l1.ebx & 0xffff, 0x0800u) << "CLFLUSH/brand bits preserved";
      EXPECT_TRUE(l1.ecx & (1u << 31)) << "hypervisor bit";
      EXPECT_TRUE(l1.ecx & 1u) << "host feature bits preserved";
      EXPECT_EQ(l1.eax, 0x000906eau);
      EXPECT_EQ((l1.edx & (1u << 28)) != 0, count > 1) << "HTT";
      EXPECT_TRUE(l1.edx & 1u);
    }
  }
}

TEST(CpuidForVcpuTest, Leaf0xbDescribesOneSocketOfCores) {
  const auto out = cpuid_for_vcpu(fake_supported(), 2, 4);
  const auto& smt = find(out, 0xb, 0);
  EXPECT_EQ(smt.edx, 2u) << "x2APIC id";
  EXPECT_EQ(smt.ebx, 1u) << "one thread per core";
  EXPECT_EQ((smt.ecx >> 8) & 0xff, 1u) << "SMT level type";
  EXPECT_EQ(smt.ecx & 0xff, 0u);
  EXPECT_EQ(smt.eax & 0x1f, 0u);
  const auto& core = find(out, 0xb, 1);
  EXPECT_EQ(core.edx, 2u) << "x2APIC id";
  EXPECT_EQ(core.ebx, 4u) << "logical processors at core level";
  EXPECT_EQ((core.ecx >> 8) & 0xff, 2u) << "core level type";
  EXPECT_EQ(core.ecx & 0xff, 1u);
  EXPECT_EQ(core.eax & 0x1f, 2u) << "shift: 4 ids need 2 bits";
  // The shift must cover every APIC id.
  EXPECT_GE(1u << (core.eax & 0x1f), 4u);
}

TEST(CpuidForVcpuTest, Leaf0xbShiftCoversNonPowerOfTwoCounts) {
  for (unsigned count : {1u, 2u, 3u, 5u, 8u, 9u, 254u}) {
    const auto out = cpuid_for_vcpu(fake_supported(), count - 1, count);
    const auto& core = find(out, 0xb, 1);
    EXPECT_GE(1ull << (core.eax & 0x1f), count) << count;
    EXPECT_LT(1ull << (core.eax & 0x1f), 2ull * count) << count;
    EXPECT_EQ(core.edx, count - 1);
  }
}

TEST(CpuidForVcpuTest, AmdLeaves) {
  const auto out = cpuid_for_vcpu(fake_supported(), 3, 4);
  const auto& size = find(out, 0x80000008);
  EXPECT_EQ(size.ecx & 0xff, 3u) << "NC = count - 1";
  EXPECT_EQ((size.ecx >> 12) & 0xf, 2u) << "ApicIdSize";
  EXPECT_EQ(size.eax, 0x3030u) << "address sizes preserved";
  const auto& topo = find(out, 0x8000001e);
  EXPECT_EQ(topo.eax, 3u) << "extended APIC id";
  EXPECT_EQ(topo.ebx & 0xff, 3u) << "core id";
  EXPECT_EQ((topo.ebx >> 8) & 0xff, 0u) << "one thread per core";
}

TEST(CpuidForVcpuTest, OtherLeavesAreUntouchedAndNothingIsAddedOrDropped) {
  const auto in = fake_supported();
  const auto out = cpuid_for_vcpu(in, 0, 2);
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(std::memcmp(&find(out, 0x0), &in[0], sizeof(kvm_cpuid_entry2)), 0);
}

// Leaf 4 (deterministic cache parameters): EAX[25:14] = logical processors
// sharing the cache - 1, EAX[31:26] = cores in the package - 1 (6 bits).
std::vector<kvm_cpuid_entry2> with_cache_leaves() {
  auto v = fake_supported();
  v.push_back(leaf(0x4, 0, (1u << 5) | 1, 0x01c0003f, 0x3f, 0));   // L1 data cache
  v.push_back(leaf(0x4, 1, (3u << 5) | 3, 0x03c0003f, 0xfff, 0));  // L3 unified cache
  v.push_back(leaf(0x4, 2, 0, 0, 0, 0));                          // no more caches
  return v;
}

TEST(CpuidForVcpuTest, Leaf4CacheSharingAndCoreCount) {
  const auto out = cpuid_for_vcpu(with_cache_leaves(), 1, 4);
  const auto& l1 = find(out, 0x4, 0);
  EXPECT_EQ(l1.eax & 0x3fff, (1u << 5) | 1) << "type and level preserved";
  EXPECT_EQ((l1.eax >> 14) & 0xfff, 0u) << "L1 is private to a core";
  EXPECT_EQ(l1.eax >> 26, 3u) << "4 cores - 1";
  EXPECT_EQ(l1.ebx, 0x01c0003fu);
  const auto& l3 = find(out, 0x4, 1);
  EXPECT_EQ((l3.eax >> 14) & 0xfff, 3u) << "L3 shared by all 4";
  EXPECT_EQ(l3.eax >> 26, 3u);
  const auto& none = find(out, 0x4, 2);
  EXPECT_EQ(none.eax, 0u) << "a null descriptor stays null";
}

// EAX[31:26] is 6 bits: more than 64 vCPUs must saturate at 63, not wrap.
TEST(CpuidForVcpuTest, Leaf4CoreCountDoesNotWrapAbove64Vcpus) {
  const auto out = cpuid_for_vcpu(with_cache_leaves(), 0, 100);
  const auto& l1 = find(out, 0x4, 0);
  EXPECT_EQ(l1.eax & 0x3fff, (1u << 5) | 1) << "low bits must survive";
  EXPECT_EQ(l1.eax >> 26, 63u) << "100 cores wrapped to " << (l1.eax >> 26) + 1;
}

TEST(CpuidForVcpuTest, IndexOutOfRangeThrows) {
  EXPECT_THROW(cpuid_for_vcpu(fake_supported(), 4, 4), Error);
  EXPECT_THROW(cpuid_for_vcpu(fake_supported(), 5, 4), Error);
  EXPECT_THROW(cpuid_for_vcpu(fake_supported(), 0, 0), Error);
  EXPECT_NO_THROW(cpuid_for_vcpu(fake_supported(), 3, 4));
}

TEST(BootMsrsTest, MiscEnableAndMtrrDefType) {
  const auto msrs = boot_msrs();
  auto get = [&](uint32_t index) -> std::optional<uint64_t> {
    for (const auto& m : msrs)
      if (m.index == index) return m.data;
    return std::nullopt;
  };
  EXPECT_EQ(get(0x1a0), uint64_t{1}) << "IA32_MISC_ENABLE: fast strings";
  EXPECT_EQ(get(0x2ff), uint64_t{(1u << 11) | 6}) << "MTRRdefType: enabled, write-back";
  EXPECT_EQ(get(0x10), uint64_t{0}) << "TSC";
  for (size_t i = 0; i < msrs.size(); ++i)
    for (size_t j = i + 1; j < msrs.size(); ++j) EXPECT_NE(msrs[i].index, msrs[j].index) << "duplicate MSR";
}

TEST(LongModeSregsTest, SegmentsAndControlRegisters) {
  const kvm_sregs s = long_mode_sregs(kvm_sregs{});
  EXPECT_EQ(s.cs.selector, 0x10);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.cs.db, 0) << "L and D both set is reserved";
  EXPECT_EQ(s.cs.present, 1);
  EXPECT_EQ(s.cs.s, 1);
  EXPECT_TRUE(s.cs.type & 0x8) << "code segment";
  for (const kvm_segment* seg : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(seg->selector, 0x18);
    EXPECT_EQ(seg->present, 1);
    EXPECT_FALSE(seg->type & 0x8) << "data segment";
    EXPECT_TRUE(seg->type & 0x2) << "writable";
  }
  EXPECT_EQ(s.tr.selector, 0x20);
  EXPECT_EQ(s.tr.s, 0) << "TSS is a system segment";
  EXPECT_EQ(s.tr.type, 0xb) << "busy 64-bit TSS";

  constexpr uint64_t kPe = 1, kPg = 1ull << 31, kPae = 1ull << 5, kLme = 1ull << 8, kLma = 1ull << 10;
  EXPECT_EQ(s.cr0 & (kPe | kPg), kPe | kPg);
  EXPECT_EQ(s.cr4 & kPae, kPae);
  EXPECT_EQ(s.efer & (kLme | kLma), kLme | kLma);
  EXPECT_EQ(s.cr3, kPml4Addr);
  EXPECT_EQ(s.gdt.base, kGdtAddr);
  EXPECT_EQ(s.idt.base, kIdtAddr);
}

TEST(LongModeSregsTest, KeepsFieldsItDoesNotOwn) {
  kvm_sregs base{};
  base.apic_base = 0xfee00900;
  EXPECT_EQ(long_mode_sregs(base).apic_base, 0xfee00900u);
}

// The GDT the sregs point at holds selectors 0x00..0x20 (five entries); the
// IDT must not sit on top of it, or writing the IDT clobbers a descriptor.
TEST(LongModeSregsTest, GdtAndIdtDoNotOverlap) {
  const kvm_sregs s = long_mode_sregs(kvm_sregs{});
  const uint64_t gdt_end = s.gdt.base + s.gdt.limit + 1;
  const uint64_t idt_end = s.idt.base + s.idt.limit + 1;
  EXPECT_GE(s.gdt.limit + 1u, s.tr.selector + 8u) << "GDT too short for the TSS selector";
  EXPECT_TRUE(gdt_end <= s.idt.base || idt_end <= s.gdt.base)
      << std::hex << "GDT [0x" << s.gdt.base << ", 0x" << gdt_end << ") overlaps IDT [0x" << s.idt.base << ", 0x"
      << idt_end << ")";
}

TEST(BootRegsTest, EntryStackAndZeroPage) {
  const kvm_regs r = boot_regs(0x1000000, kZeroPageAddr);
  EXPECT_EQ(r.rip, 0x1000000u);
  EXPECT_EQ(r.rsi, kZeroPageAddr);
  EXPECT_EQ(r.rsp, kBootStackTop);
  EXPECT_EQ(r.rflags, 0x2u);
}

TEST(BootFpuTest, DefaultControlWords) {
  const kvm_fpu f = boot_fpu();
  EXPECT_EQ(f.fcw, 0x37f);
  EXPECT_EQ(f.mxcsr, 0x1f80u);
}

TEST(BootLapicTest, Lint0ExtIntLint1Nmi) {
  kvm_lapic_state l{};
  const uint32_t junk = 0x00010700;  // masked, delivery mode bits set
  std::memcpy(l.regs + 0x350, &junk, 4);
  std::memcpy(l.regs + 0x360, &junk, 4);
  const auto out = boot_lapic(l);
  uint32_t lint0, lint1;
  std::memcpy(&lint0, out.regs + 0x350, 4);
  std::memcpy(&lint1, out.regs + 0x360, 4);
  EXPECT_EQ((lint0 >> 8) & 7, 7u) << "ExtINT";
  EXPECT_EQ((lint1 >> 8) & 7, 4u) << "NMI";
  EXPECT_EQ(lint0 & ~0x700u, 0x00010000u) << "other bits preserved";
}

class BootTablesTest : public ::testing::Test {
 protected:
  GuestMemory mem{ram_layout(64ull << 20)};
  void SetUp() override {
    // Junk everywhere the tables go: they must be written completely.
    auto low = mem.slice(GuestAddress(0), 0x10000);
    ASSERT_TRUE(low);
    std::fill(low->begin(), low->end(), 0xaa);
    write_boot_tables(mem);
  }
  uint64_t q(uint64_t addr) const {
    auto v = mem.read_obj<uint64_t>(GuestAddress(addr));
    EXPECT_TRUE(v.has_value());
    return v.value_or(0);
  }
  // Walks the tables like the MMU; nullopt when not mapped.
  std::optional<uint64_t> translate(uint64_t va) const {
    const uint64_t pml4e = q(kPml4Addr + ((va >> 39) & 511) * 8);
    if (!(pml4e & 1)) return std::nullopt;
    const uint64_t pdpte = q((pml4e & ~0xfffull) + ((va >> 30) & 511) * 8);
    if (!(pdpte & 1)) return std::nullopt;
    const uint64_t pde = q((pdpte & ~0xfffull) + ((va >> 21) & 511) * 8);
    if (!(pde & 1) || !(pde & 0x80)) return std::nullopt;
    return (pde & ~0x1fffffull) + (va & 0x1fffff);
  }
};

TEST_F(BootTablesTest, Pml4AndPdptEntries) {
  EXPECT_EQ(q(kPml4Addr), kPdptAddr | 3);
  for (int i = 1; i < 512; ++i) ASSERT_EQ(q(kPml4Addr + i * 8), 0u) << "PML4[" << i << "]";
  for (uint64_t g = 0; g < 4; ++g) EXPECT_EQ(q(kPdptAddr + g * 8), (kPdAddr + g * 4096) | 3) << g;
  for (int i = 4; i < 512; ++i) ASSERT_EQ(q(kPdptAddr + i * 8), 0u) << "PDPT[" << i << "]";
}

TEST_F(BootTablesTest, PdesIdentityMapWithTwoMiBPages) {
  EXPECT_EQ(q(kPdAddr), 0x0ull | 0x83);
  EXPECT_EQ(q(kPdAddr + 1 * 8), 0x200000ull | 0x83) << "2 MiB";
  EXPECT_EQ(q(kPdAddr + 3 * 4096), 0xc0000000ull | 0x83) << "3 GiB";
  EXPECT_EQ(q(kPdAddr + 4 * 4096 - 8), 0xffe00000ull | 0x83) << "last 2 MiB below 4 GiB";
}

TEST_F(BootTablesTest, WalkIsIdentityBelowFourGiB) {
  for (uint64_t va : {0x0ull, 0x1000ull, 0x200000ull, 0x1000200ull, 0x3fffffffull, 0x40000000ull, 0xc0000000ull,
                      0xfee00000ull, 0xffffffffull})
    EXPECT_EQ(translate(va), va) << std::hex << va;
  EXPECT_EQ(translate(0x100000000ull), std::nullopt);
}

TEST_F(BootTablesTest, GdtDescriptorsMatchBootSelectors) {
  const kvm_sregs s = long_mode_sregs(kvm_sregs{});
  EXPECT_EQ(q(kGdtAddr + 0), 0u);
  EXPECT_EQ(q(kGdtAddr + s.cs.selector), 0x00af9b000000ffffull) << "64-bit code, L=1";
  EXPECT_EQ(q(kGdtAddr + s.ds.selector), 0x00cf93000000ffffull) << "flat data";
  EXPECT_EQ(q(kGdtAddr + s.tr.selector), 0x008f8b000000ffffull) << "busy TSS";
  EXPECT_EQ(q(kIdtAddr), 0u) << "empty IDT";
}

TEST(BootTablesSmallRamTest, TooLittleRamForThePageDirectoryThrows) {
  GuestMemory mem({{GuestAddress(0), 0xc000}});
  EXPECT_KSBOX_ERROR(write_boot_tables(mem), "page directory");
}

}  // namespace
}  // namespace ksbox::x86

namespace ksbox::x86 {
namespace {

TEST(AdvertiseTscDeadlineTest, SetsLeafOneEcxBit24Only) {
  kvm_cpuid_entry2 leaf1{}, leaf7{};
  leaf1.function = 0x1;
  leaf1.ecx = 0x1;
  leaf7.function = 0x7;
  std::vector<kvm_cpuid_entry2> cpuid{leaf1, leaf7};
  advertise_tsc_deadline(cpuid);
  EXPECT_EQ(cpuid[0].ecx, 0x1u | (1u << 24));
  EXPECT_EQ(cpuid[1].ecx, 0u);
}

}  // namespace
}  // namespace ksbox::x86
