#include "vmm/x86/e820.h"

#include <gtest/gtest.h>

#include "test_helpers.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

uint64_t ram_total(const std::vector<E820Entry>& map) {
  uint64_t t = 0;
  for (const auto& e : map)
    if (e.type == kE820Ram) t += e.size;
  return t;
}

TEST(RamLayoutTest, SmallGuestIsOneRegion) {
  const auto l = ram_layout(256 * MiB);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].start.value(), 0u);
  EXPECT_EQ(l[0].size, 256 * MiB);
  EXPECT_EQ(low_ram_end(256 * MiB), 256 * MiB);
}

TEST(RamLayoutTest, ExactlyTheGapStartIsOneRegion) {
  const auto l = ram_layout(kMmioGapStart);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].start.value(), 0u);
  EXPECT_EQ(l[0].size, kMmioGapStart);
  EXPECT_EQ(low_ram_end(kMmioGapStart), kMmioGapStart);
}

TEST(RamLayoutTest, LargeGuestIsSplitAtTheGap) {
  for (uint64_t mem : {kMmioGapStart + 4096, 4 * GiB, 6 * GiB, 64 * GiB}) {
    SCOPED_TRACE(mem);
    const auto l = ram_layout(mem);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].start.value(), 0u);
    EXPECT_EQ(l[0].size, kMmioGapStart);
    EXPECT_EQ(l[1].start.value(), kMmioGapEnd);
    EXPECT_EQ(l[1].start.value(), 4 * GiB);
    EXPECT_EQ(l[0].size + l[1].size, mem);
    EXPECT_EQ(low_ram_end(mem), kMmioGapStart);
  }
}

TEST(RamLayoutTest, BelowMinimumThrows) {
  EXPECT_THROW(ram_layout((kMinMemoryMiB << 20) - 4096), Error);
  EXPECT_THROW(ram_layout(0), Error);
  EXPECT_NO_THROW(ram_layout(kMinMemoryMiB << 20));
}

TEST(RamLayoutTest, LayoutIsAcceptedByGuestMemory) {
  GuestMemory mem(ram_layout(5 * GiB));  // reserved lazily
  EXPECT_EQ(mem.total_size(), 5 * GiB);
  EXPECT_TRUE(mem.slice(GuestAddress(kMmioGapStart - 8), 8).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(kMmioGapStart), 1).has_value());
  EXPECT_TRUE(mem.slice(GuestAddress(4 * GiB), 8).has_value());
  EXPECT_TRUE(mem.slice(GuestAddress(6 * GiB - 8), 8).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(6 * GiB), 1).has_value());
}

TEST(BuildE820Test, SmallGuest) {
  const auto m = build_e820(256 * MiB);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].addr, 0u);
  EXPECT_EQ(m[0].size, 0x9fc00u);
  EXPECT_EQ(m[0].type, kE820Ram);
  EXPECT_EQ(m[1].addr, 0x9fc00u);
  EXPECT_EQ(m[1].addr + m[1].size, 1 * MiB);
  EXPECT_EQ(m[1].type, kE820Reserved);
  EXPECT_EQ(m[2].addr, 1 * MiB);
  EXPECT_EQ(m[2].addr + m[2].size, 256 * MiB);
  EXPECT_EQ(m[2].type, kE820Ram);
}

TEST(BuildE820Test, ExactlyTheGapStart) {
  const auto m = build_e820(kMmioGapStart);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[2].addr + m[2].size, kMmioGapStart);
  EXPECT_EQ(ram_total(m) + m[1].size, kMmioGapStart);
}

TEST(BuildE820Test, LargeGuestHasHighRamAtFourGiB) {
  const uint64_t mem = 6 * GiB;
  const auto m = build_e820(mem);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[2].addr + m[2].size, kMmioGapStart);
  EXPECT_EQ(m[3].addr, 4 * GiB);
  EXPECT_EQ(m[3].type, kE820Ram);
  EXPECT_EQ(m[3].size, mem - kMmioGapStart);
  // Everything the guest was given is described: RAM plus the BIOS hole.
  EXPECT_EQ(ram_total(m) + m[1].size, mem);
  // Nothing in the MMIO gap.
  for (const auto& e : m) EXPECT_TRUE(e.addr + e.size <= kMmioGapStart || e.addr >= kMmioGapEnd);
}

TEST(BuildE820Test, EntriesAreSortedAndDisjoint) {
  for (uint64_t mem : {64 * MiB, 256 * MiB, kMmioGapStart, 5 * GiB}) {
    const auto m = build_e820(mem);
    for (size_t i = 1; i < m.size(); ++i) EXPECT_LE(m[i - 1].addr + m[i - 1].size, m[i].addr);
    for (const auto& e : m) EXPECT_GT(e.size, 0u);
  }
}

}  // namespace
}  // namespace ksbox::x86
