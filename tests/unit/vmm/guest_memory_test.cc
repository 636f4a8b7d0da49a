#include "vmm/guest_memory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "test_helpers.h"

namespace ksbox {
namespace {

constexpr uint64_t kPage = 4096;
// Two regions with a gap between them: [0, 64 KiB) and [128 KiB, 192 KiB).
constexpr uint64_t kLowStart = 0, kLowSize = 0x10000;
constexpr uint64_t kHighStart = 0x20000, kHighSize = 0x10000;

class GuestMemoryTest : public ::testing::Test {
 protected:
  GuestMemory mem{{{GuestAddress(kLowStart), kLowSize}, {GuestAddress(kHighStart), kHighSize}}};

  const GuestRegion& region_at(uint64_t start) const {
    for (const auto& r : mem.regions())
      if (r.start.value() == start) return r;
    ADD_FAILURE() << "no region at " << start;
    return mem.regions().front();
  }
};

TEST_F(GuestMemoryTest, RegionsAreSortedAndTotalAddsUp) {
  ASSERT_EQ(mem.regions().size(), 2u);
  EXPECT_EQ(mem.regions()[0].start.value(), kLowStart);
  EXPECT_EQ(mem.regions()[0].size, kLowSize);
  EXPECT_EQ(mem.regions()[1].start.value(), kHighStart);
  EXPECT_EQ(mem.regions()[1].size, kHighSize);
  EXPECT_EQ(mem.total_size(), kLowSize + kHighSize);
  EXPECT_NE(mem.regions()[0].host, mem.regions()[1].host);
}

// KVM maps a guest's 2 MiB page with one huge page only where the host and
// guest addresses agree in their low 21 bits: every region is placed so.
TEST(GuestMemoryLayout, RegionsAgreeWithTheirHostAddressesModulo2MiB) {
  constexpr uint64_t kMiB = 1 << 20;
  GuestMemory mem{{{GuestAddress(0), 3 * kMiB}, {GuestAddress(5 * kMiB), 3 * kMiB}, {GuestAddress(9 * kMiB + 0x3000), kMiB}}};
  ASSERT_EQ(mem.regions().size(), 3u);
  for (const auto& r : mem.regions())
    EXPECT_EQ((reinterpret_cast<uintptr_t>(r.host) - r.start.value()) % (2 * kMiB), 0u) << r.start.value();
  EXPECT_EQ(mem.total_size(), 7 * kMiB);  // the regions, not the gaps between them
  // Writable end to end, each region its own memory.
  for (const auto& r : mem.regions()) std::fill(r.host, r.host + r.size, static_cast<uint8_t>(r.start.value() >> 20));
  EXPECT_EQ(mem.regions()[0].host[3 * kMiB - 1], 0);
  EXPECT_EQ(mem.regions()[1].host[0], 5);
}

TEST_F(GuestMemoryTest, SliceInsideARegionPointsAtItsHostMapping) {
  auto s = mem.slice(GuestAddress(kHighStart + 0x123), 16);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->size(), 16u);
  EXPECT_EQ(s->data(), region_at(kHighStart).host + 0x123);

  auto low = mem.slice(GuestAddress(0x100), 1);
  ASSERT_TRUE(low.has_value());
  EXPECT_EQ(low->data(), region_at(kLowStart).host + 0x100);
}

TEST_F(GuestMemoryTest, SliceMayStartAndEndExactlyAtRegionEdges) {
  auto whole = mem.slice(GuestAddress(kHighStart), kHighSize);
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(whole->data(), region_at(kHighStart).host);
  EXPECT_EQ(whole->size(), kHighSize);

  auto last = mem.slice(GuestAddress(kLowStart + kLowSize - 8), 8);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->data(), region_at(kLowStart).host + kLowSize - 8);

  auto zero_len = mem.slice(GuestAddress(kLowStart + 4), 0);
  ASSERT_TRUE(zero_len.has_value());
  EXPECT_EQ(zero_len->size(), 0u);
}

TEST_F(GuestMemoryTest, SliceCrossingARegionEndIsRefused) {
  EXPECT_FALSE(mem.slice(GuestAddress(kLowSize - 8), 9).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(kHighStart + kHighSize - 1), 2).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(kHighStart), kHighSize + 1).has_value());
}

TEST_F(GuestMemoryTest, SliceSpanningTheGapBetweenRegionsIsRefused) {
  // Starts in the low region, ends in the high one: never one host range.
  EXPECT_FALSE(mem.slice(GuestAddress(kLowSize - 0x10), kHighStart - kLowSize + 0x20).has_value());
  // Wholly inside the gap.
  EXPECT_FALSE(mem.slice(GuestAddress(kLowSize), 1).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(kHighStart - 1), 1).has_value());
  // Beyond all RAM.
  EXPECT_FALSE(mem.slice(GuestAddress(kHighStart + kHighSize), 1).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(kHighStart + kHighSize), 0).has_value());
}

TEST_F(GuestMemoryTest, AddressPlusLengthOverflowIsRefused) {
  EXPECT_FALSE(mem.slice(GuestAddress(UINT64_MAX - 4), 16).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(UINT64_MAX), 1).has_value());
  // A start inside RAM with a length that wraps back into RAM.
  EXPECT_FALSE(mem.slice(GuestAddress(kHighStart + 0x10), UINT64_MAX - 0x8).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(0x100), UINT64_MAX).has_value());
}

TEST_F(GuestMemoryTest, HugeLengthIsRefused) {
  EXPECT_FALSE(mem.slice(GuestAddress(0), 1ull << 40).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(0), UINT64_MAX).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(0), kLowSize + 1).has_value());
}

TEST(GuestMemoryHighTest, RegionNearTheTopOfTheAddressSpace) {
  const uint64_t start = 0xffff'ffff'fffe'0000ull;
  GuestMemory mem({{GuestAddress(start), 0x10000}});
  EXPECT_TRUE(mem.slice(GuestAddress(start + 0xfff0), 0x10).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(start + 0xfff0), 0x11).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(start + 0x10), UINT64_MAX - 0x20).has_value());
  EXPECT_FALSE(mem.slice(GuestAddress(start), UINT64_MAX).has_value());
}

TEST_F(GuestMemoryTest, ReadWriteObjRoundTrip) {
  struct Pod {
    uint32_t a;
    uint16_t b;
    uint8_t c[2];
  };
  const Pod in{0xdeadbeef, 0x1234, {7, 9}};
  ASSERT_TRUE(mem.write_obj(GuestAddress(kHighStart + 0x40), in));
  auto out = mem.read_obj<Pod>(GuestAddress(kHighStart + 0x40));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->a, in.a);
  EXPECT_EQ(out->b, in.b);
  EXPECT_EQ(out->c[0], 7);
  EXPECT_EQ(out->c[1], 9);

  // The bytes really are in the region's host memory, little-endian.
  const uint8_t* host = region_at(kHighStart).host + 0x40;
  EXPECT_EQ(host[0], 0xef);
  EXPECT_EQ(host[3], 0xde);

  // Last fitting position.
  ASSERT_TRUE(mem.write_obj(GuestAddress(kLowSize - 8), uint64_t{0x0102030405060708}));
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(kLowSize - 8)), uint64_t{0x0102030405060708});
}

TEST_F(GuestMemoryTest, ReadWriteObjOutOfRangeIsRefusedAndWritesNothing) {
  uint8_t* tail = region_at(kLowStart).host + kLowSize - 4;
  std::memset(tail, 0x5a, 4);
  EXPECT_FALSE(mem.write_obj(GuestAddress(kLowSize - 4), uint64_t{0}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(tail[i], 0x5a) << "byte " << i << " was written";
  EXPECT_FALSE(mem.read_obj<uint64_t>(GuestAddress(kLowSize - 4)).has_value());
  EXPECT_FALSE(mem.read_obj<uint32_t>(GuestAddress(kLowSize)).has_value());
  EXPECT_FALSE(mem.read_obj<uint32_t>(GuestAddress(UINT64_MAX - 1)).has_value());
  EXPECT_FALSE(mem.write_obj(GuestAddress(UINT64_MAX - 1), uint32_t{1}));
}

TEST_F(GuestMemoryTest, WriteBytes) {
  const std::array<uint8_t, 5> bytes{1, 2, 3, 4, 5};
  ASSERT_TRUE(mem.write_bytes(GuestAddress(kHighStart + 0x10), bytes));
  auto s = mem.slice(GuestAddress(kHighStart + 0x10), 5);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), s->begin()));
  EXPECT_FALSE(mem.write_bytes(GuestAddress(kHighStart + kHighSize - 2), bytes));
}

TEST_F(GuestMemoryTest, RegionsDoNotAlias) {
  ASSERT_TRUE(mem.write_obj(GuestAddress(kLowStart), uint32_t{0x11111111}));
  ASSERT_TRUE(mem.write_obj(GuestAddress(kHighStart), uint32_t{0x22222222}));
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(kLowStart)), uint32_t{0x11111111});
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(kHighStart)), uint32_t{0x22222222});
}

TEST_F(GuestMemoryTest, SliceOrThrowNamesTheThing) {
  EXPECT_NO_THROW(mem.slice_or_throw(GuestAddress(0x1000), 0x10, "zero page"));
  EXPECT_KSBOX_ERROR(mem.slice_or_throw(GuestAddress(kLowSize), 0x10, "zero page"), "zero page");
  EXPECT_KSBOX_ERROR(mem.slice_or_throw(GuestAddress(0x30000), 0x10, "command line"), "0x30000");
  EXPECT_KSBOX_ERROR(mem.slice_or_throw(GuestAddress(UINT64_MAX), 2, "PML4"), "PML4");
}

TEST(GuestMemoryLayoutTest, AdjacentRegionsAreAccepted) {
  GuestMemory mem({{GuestAddress(0x1000), kPage}, {GuestAddress(0), kPage}});
  ASSERT_EQ(mem.regions().size(), 2u);
  EXPECT_EQ(mem.regions()[0].start.value(), 0u);
  // Adjacent but separate: a slice across the seam is still two regions.
  EXPECT_FALSE(mem.slice(GuestAddress(kPage - 4), 8).has_value());
}

TEST(GuestMemoryLayoutTest, OverlappingRegionsThrow) {
  using L = GuestMemory::Layout;
  EXPECT_KSBOX_ERROR(GuestMemory({L{GuestAddress(0), 2 * kPage}, L{GuestAddress(kPage), 2 * kPage}}), "overlap");
  // Order of the input does not matter.
  EXPECT_KSBOX_ERROR(GuestMemory({L{GuestAddress(kPage), 2 * kPage}, L{GuestAddress(0), 2 * kPage}}), "overlap");
  // Containment and identical ranges.
  EXPECT_KSBOX_ERROR(GuestMemory({L{GuestAddress(0), 8 * kPage}, L{GuestAddress(2 * kPage), kPage}}), "overlap");
  EXPECT_KSBOX_ERROR(GuestMemory({L{GuestAddress(0), kPage}, L{GuestAddress(0), kPage}}), "overlap");
}

TEST(GuestMemoryLayoutTest, UnalignedOrEmptyRegionsThrow) {
  using L = GuestMemory::Layout;
  EXPECT_THROW(GuestMemory({L{GuestAddress(0x800), kPage}}), Error);
  EXPECT_THROW(GuestMemory({L{GuestAddress(0), kPage + 1}}), Error);
  EXPECT_THROW(GuestMemory({L{GuestAddress(0), 0}}), Error);
  EXPECT_THROW(GuestMemory({L{GuestAddress(0), kPage}, L{GuestAddress(0x10000), 0}}), Error);
}

TEST(GuestMemoryLayoutTest, RegionWrappingTheAddressSpaceThrows) {
  using L = GuestMemory::Layout;
  EXPECT_THROW(GuestMemory({L{GuestAddress(0xffff'ffff'ffff'f000ull), 2 * kPage}}), Error);
  EXPECT_THROW(GuestMemory({L{GuestAddress(0xffff'ffff'ffff'f000ull), kPage}}), Error);  // ends at 2^64
}

TEST_F(GuestMemoryTest, DiscardZeroesWholePagesInsideOneRegionOnly) {
  auto all = *mem.slice(GuestAddress(kLowStart), kLowSize);
  std::fill(all.begin(), all.end(), uint8_t{0xaa});
  using R = GuestMemory::DiscardResult;
  EXPECT_EQ(mem.discard(GuestAddress(kPage), 2 * kPage), R::kOk);
  EXPECT_EQ(all[kPage - 1], 0xaa);
  EXPECT_EQ(all[kPage], 0);
  EXPECT_EQ(all[3 * kPage - 1], 0);
  EXPECT_EQ(all[3 * kPage], 0xaa);
  // Refused, and nothing touched: unaligned, empty, across the gap, outside RAM, wrapping.
  EXPECT_EQ(mem.discard(GuestAddress(4 * kPage + 1), kPage), R::kMisaligned);
  EXPECT_EQ(mem.discard(GuestAddress(4 * kPage), kPage - 1), R::kMisaligned);
  EXPECT_EQ(mem.discard(GuestAddress(4 * kPage), 0), R::kMisaligned);
  EXPECT_EQ(mem.discard(GuestAddress(kLowSize - kPage), 2 * kPage), R::kOutOfRange);
  EXPECT_EQ(mem.discard(GuestAddress(kLowSize), kPage), R::kOutOfRange);
  EXPECT_EQ(mem.discard(GuestAddress(~uint64_t{0} - kPage + 1), kPage), R::kOutOfRange);
  EXPECT_EQ(mem.discard(GuestAddress(kPage), ~uint64_t{0} - kPage + 1), R::kOutOfRange);
  EXPECT_EQ(all[4 * kPage], 0xaa);
  EXPECT_EQ(all[kLowSize - 1], 0xaa);
  // The pages are usable again.
  all[kPage] = 7;
  EXPECT_EQ(all[kPage], 7);
}

}  // namespace
}  // namespace ksbox
