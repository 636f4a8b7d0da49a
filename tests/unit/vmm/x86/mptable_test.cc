#include "vmm/x86/mptable.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "test_helpers.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

constexpr uint32_t kBase = 0x9fc00;

template <typename T>
T read_at(const std::vector<uint8_t>& v, size_t off) {
  T t;
  EXPECT_LE(off + sizeof(T), v.size());
  std::memcpy(&t, v.data() + off, sizeof(T));
  return t;
}

struct Parsed {
  MpFloatingPointer fp;
  MpConfigHeader hdr;
  std::vector<MpProcessor> cpus;
  std::vector<MpBus> buses;
  std::vector<MpIoApic> ioapics;
  std::vector<MpInterrupt> io_ints, local_ints;
  size_t entries = 0;
};

// Walks the table the way Linux's mpparse does.
Parsed parse(const std::vector<uint8_t>& t) {
  Parsed p{};
  p.fp = read_at<MpFloatingPointer>(t, 0);
  const size_t table = p.fp.config_table - kBase;
  p.hdr = read_at<MpConfigHeader>(t, table);
  size_t off = table + sizeof(MpConfigHeader);
  const size_t end = table + p.hdr.length;
  while (off < end) {
    const uint8_t type = t.at(off);
    ++p.entries;
    switch (type) {
      case 0:
        p.cpus.push_back(read_at<MpProcessor>(t, off));
        off += sizeof(MpProcessor);
        break;
      case 1:
        p.buses.push_back(read_at<MpBus>(t, off));
        off += sizeof(MpBus);
        break;
      case 2:
        p.ioapics.push_back(read_at<MpIoApic>(t, off));
        off += sizeof(MpIoApic);
        break;
      case 3:
        p.io_ints.push_back(read_at<MpInterrupt>(t, off));
        off += sizeof(MpInterrupt);
        break;
      case 4:
        p.local_ints.push_back(read_at<MpInterrupt>(t, off));
        off += sizeof(MpInterrupt);
        break;
      default:
        ADD_FAILURE() << "unknown MP entry type " << int{type} << " at " << off;
        return p;
    }
  }
  EXPECT_EQ(off, end) << "entries overrun the table length";
  return p;
}

TEST(MpTableTest, StructSizesMatchTheSpec) {
  EXPECT_EQ(sizeof(MpFloatingPointer), 16u);
  EXPECT_EQ(sizeof(MpConfigHeader), 44u);
  EXPECT_EQ(sizeof(MpProcessor), 20u);
  EXPECT_EQ(sizeof(MpBus), 8u);
  EXPECT_EQ(sizeof(MpIoApic), 8u);
  EXPECT_EQ(sizeof(MpInterrupt), 8u);
}

TEST(MpTableTest, MpChecksum) {
  const uint8_t bytes[] = {0x01, 0xff, 0x10};
  EXPECT_EQ(mp_checksum(bytes, 3), 0x10);
  EXPECT_EQ(mp_checksum(bytes, 0), 0);
}

TEST(MpTableTest, FloatingPointer) {
  const auto t = build_mptable(1, kBase);
  const auto fp = read_at<MpFloatingPointer>(t, 0);
  EXPECT_EQ(std::string(fp.signature, 4), "_MP_");
  EXPECT_EQ(mp_checksum(t.data(), sizeof(MpFloatingPointer)), 0);
  EXPECT_EQ(fp.config_table, kBase + 16);
  EXPECT_EQ(fp.length, 1);
  EXPECT_EQ(fp.spec_rev, 4);
  EXPECT_EQ(fp.features[0], 0) << "0 = a configuration table is present";
}

TEST(MpTableTest, PointerFollowsTheBase) {
  const auto t = build_mptable(2, 0xf0000);
  EXPECT_EQ(read_at<MpFloatingPointer>(t, 0).config_table, 0xf0010u);
  EXPECT_EQ(mp_checksum(t.data(), 16), 0);
}

TEST(MpTableTest, ConfigTableHeader) {
  const auto t = build_mptable(4, kBase);
  const auto hdr = read_at<MpConfigHeader>(t, 16);
  EXPECT_EQ(std::string(hdr.signature, 4), "PCMP");
  EXPECT_EQ(hdr.spec_rev, 4);
  EXPECT_EQ(hdr.length, t.size() - 16);
  EXPECT_EQ(mp_checksum(t.data() + 16, hdr.length), 0);
  EXPECT_EQ(hdr.lapic_addr, kLapicAddr);
  EXPECT_EQ(hdr.ext_length, 0);
  const auto p = parse(t);
  EXPECT_EQ(hdr.entry_count, p.entries);
}

class MpTableCpusTest : public ::testing::TestWithParam<unsigned> {};

TEST_P(MpTableCpusTest, ProcessorsIoApicAndIsaRouting) {
  const unsigned n = GetParam();
  const auto t = build_mptable(n, kBase);
  const auto p = parse(t);
  EXPECT_EQ(mp_checksum(t.data(), 16), 0);
  EXPECT_EQ(mp_checksum(t.data() + 16, p.hdr.length), 0);
  EXPECT_EQ(p.hdr.entry_count, p.entries);

  ASSERT_EQ(p.cpus.size(), n);
  std::set<uint8_t> cpu_ids;
  for (unsigned i = 0; i < n; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(p.cpus[i].apic_id, i);
    EXPECT_TRUE(p.cpus[i].flags & 1) << "CPU not enabled";
    EXPECT_EQ((p.cpus[i].flags & 2) != 0, i == 0) << "only CPU 0 is the BSP";
    cpu_ids.insert(p.cpus[i].apic_id);
  }
  EXPECT_EQ(cpu_ids.size(), n);

  ASSERT_EQ(p.buses.size(), 1u);
  EXPECT_EQ(std::string(p.buses[0].bus_type, 6), "ISA   ");

  ASSERT_EQ(p.ioapics.size(), 1u);
  const auto& io = p.ioapics[0];
  EXPECT_EQ(cpu_ids.count(io.apic_id), 0u) << "I/O APIC id collides with a CPU";
  EXPECT_NE(io.apic_id, 0xff);
  EXPECT_EQ(io.addr, 0xfec00000u);
  EXPECT_TRUE(io.flags & 1);

  // Every I/O APIC pin is described (virtio-mmio devices use 5..23).
  ASSERT_EQ(p.io_ints.size(), kIoapicPins);
  for (unsigned irq = 0; irq < kIoapicPins; ++irq) {
    SCOPED_TRACE(irq);
    const auto& e = p.io_ints[irq];
    EXPECT_EQ(e.src_bus, p.buses[0].bus_id);
    EXPECT_EQ(e.src_irq, irq);
    EXPECT_EQ(e.dst_apic, io.apic_id);
    EXPECT_EQ(e.dst_pin, irq);
  }
  // LINT0 = ExtINT, LINT1 = NMI on all local APICs.
  ASSERT_EQ(p.local_ints.size(), 2u);
  EXPECT_EQ(p.local_ints[0].irq_type, 3);
  EXPECT_EQ(p.local_ints[0].dst_pin, 0);
  EXPECT_EQ(p.local_ints[1].irq_type, 1);
  EXPECT_EQ(p.local_ints[1].dst_pin, 1);
}

INSTANTIATE_TEST_SUITE_P(Cpus, MpTableCpusTest, ::testing::Values(1u, 2u, 8u, kMaxVcpus));

TEST(MpTableTest, CpuCountOutOfRangeThrows) {
  EXPECT_THROW(build_mptable(0, kBase), Error);
  EXPECT_THROW(build_mptable(255, kBase), Error);
  EXPECT_THROW(build_mptable(kMaxVcpus + 1, kBase), Error);
}

}  // namespace
}  // namespace ksbox::x86
