#include "vmm/x86/mptable.h"

#include <cstring>

#include "vmm/error.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

constexpr uint8_t kApicVersion = 0x14;
constexpr uint8_t kIoApicVersion = 0x11;
constexpr uint8_t kCpuEnabled = 1, kCpuBootstrap = 2;
constexpr uint8_t kEntryProcessor = 0, kEntryBus = 1, kEntryIoApic = 2, kEntryIoInt = 3,
                  kEntryLocalInt = 4;
constexpr uint8_t kIntINT = 0, kIntNMI = 1, kIntExtINT = 3;

template <typename T>
void append(std::vector<uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

}  // namespace

uint8_t mp_checksum(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + p[i]);
  return sum;
}

std::vector<uint8_t> build_mptable(unsigned cpus, uint32_t base) {
  if (cpus == 0 || cpus > kMaxVcpus) throw Error("MP table: CPU count out of range");
  const auto ioapic_id = static_cast<uint8_t>(cpus);  // APIC ids 0..cpus-1 are the CPUs

  std::vector<uint8_t> entries;
  uint16_t count = 0;
  for (unsigned i = 0; i < cpus; ++i, ++count) {
    MpProcessor p{};
    p.type = kEntryProcessor;
    p.apic_id = static_cast<uint8_t>(i);
    p.apic_version = kApicVersion;
    p.flags = static_cast<uint8_t>(kCpuEnabled | (i == 0 ? kCpuBootstrap : 0));
    p.signature = 0x600;  // family 6; Linux only logs it
    p.features = 0x201;   // FPU, APIC
    append(entries, p);
  }
  MpBus bus{kEntryBus, 0, {'I', 'S', 'A', ' ', ' ', ' '}};
  append(entries, bus), ++count;
  append(entries, MpIoApic{kEntryIoApic, ioapic_id, kIoApicVersion, kCpuEnabled,
                           static_cast<uint32_t>(kIoapicAddr)}),
      ++count;
  // KVM's default routing wires GSI n to I/O APIC pin n, for every pin.
  for (uint8_t irq = 0; irq < kIoapicPins; ++irq, ++count)
    append(entries, MpInterrupt{kEntryIoInt, kIntINT, 0, 0, irq, ioapic_id, irq});
  append(entries, MpInterrupt{kEntryLocalInt, kIntExtINT, 0, 0, 0, 0xff, 0}), ++count;
  append(entries, MpInterrupt{kEntryLocalInt, kIntNMI, 0, 0, 0, 0xff, 1}), ++count;

  MpConfigHeader hdr{};
  std::memcpy(hdr.signature, "PCMP", 4);
  hdr.length = static_cast<uint16_t>(sizeof(hdr) + entries.size());
  hdr.spec_rev = 4;
  std::memcpy(hdr.oem, "KSBOX   ", 8);
  std::memcpy(hdr.product, "MICROVM     ", 12);
  hdr.entry_count = count;
  hdr.lapic_addr = static_cast<uint32_t>(kLapicAddr);

  std::vector<uint8_t> table;
  append(table, hdr);
  table.insert(table.end(), entries.begin(), entries.end());
  table[offsetof(MpConfigHeader, checksum)] = static_cast<uint8_t>(-mp_checksum(table.data(), table.size()));

  MpFloatingPointer fp{};
  std::memcpy(fp.signature, "_MP_", 4);
  fp.config_table = base + static_cast<uint32_t>(sizeof(fp));
  fp.length = 1;
  fp.spec_rev = 4;
  fp.checksum = static_cast<uint8_t>(-mp_checksum(reinterpret_cast<uint8_t*>(&fp), sizeof(fp)));

  std::vector<uint8_t> out;
  append(out, fp);
  out.insert(out.end(), table.begin(), table.end());
  return out;
}

}  // namespace ksbox::x86
