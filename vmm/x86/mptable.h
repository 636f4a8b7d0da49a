// Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
// learns its CPUs, its I/O APIC and the ISA interrupt wiring.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ksbox::x86 {

#pragma pack(push, 1)
struct MpFloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t config_table;
  uint8_t length;  // in 16-byte units
  uint8_t spec_rev;
  uint8_t checksum;
  uint8_t features[5];
};
struct MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t length;    // base table, header included
  uint8_t spec_rev;
  uint8_t checksum;
  char oem[8];
  char product[12];
  uint32_t oem_table;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_addr;
  uint16_t ext_length;
  uint8_t ext_checksum;
  uint8_t reserved;
};
struct MpProcessor {
  uint8_t type;  // 0
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;  // bit 0 enabled, bit 1 bootstrap processor
  uint32_t signature;
  uint32_t features;
  uint32_t reserved[2];
};
struct MpBus {
  uint8_t type;  // 1
  uint8_t bus_id;
  char bus_type[6];
};
struct MpIoApic {
  uint8_t type;  // 2
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;
  uint32_t addr;
};
struct MpInterrupt {
  uint8_t type;  // 3 = I/O interrupt, 4 = local interrupt
  uint8_t irq_type;  // 0 INT, 1 NMI, 2 SMI, 3 ExtINT
  uint16_t flags;
  uint8_t src_bus;
  uint8_t src_irq;
  uint8_t dst_apic;
  uint8_t dst_pin;
};
#pragma pack(pop)

// KVM's in-kernel I/O APIC has 24 pins; its default routing wires GSI n to
// pin n for all of them. Pins 16..23 are described as ISA interrupts too
// (edge-triggered, active high: what an irqfd pulse delivers), so a guest
// without ACPI or PCI maps each to Linux IRQ n.
inline constexpr unsigned kIoapicPins = 24;

// The floating pointer followed by the configuration table, laid out to be
// copied to guest-physical `base` (the pointer refers to the table by address).
// Throws Error when `cpus` is 0 or above the xAPIC limit.
std::vector<uint8_t> build_mptable(unsigned cpus, uint32_t base);

// Sum of bytes modulo 256; a valid MP structure sums to 0.
uint8_t mp_checksum(const uint8_t* p, size_t n);

}  // namespace ksbox::x86
