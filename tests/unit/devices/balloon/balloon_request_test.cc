// Parsing of balloon requests from descriptor chains (no queue involved).
#include "devices/balloon/balloon_request.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace ksbox::devices::balloon {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBuf = 0x1000;
// Two regions that touch in guest-physical space: [0, 64 KiB) and [64 KiB, 128 KiB).
GuestMemory touching_regions() {
  return GuestMemory({{GuestAddress(0), 0x10000}, {GuestAddress(0x10000), 0x10000}});
}

class BalloonRequestTest : public ::testing::Test {
 protected:
  virtio::DescriptorChain pfn_chain(const std::vector<uint32_t>& pfns) {
    EXPECT_TRUE(mem_.write_bytes(GuestAddress(kBuf), {reinterpret_cast<const uint8_t*>(pfns.data()), pfns.size() * 4}));
    virtio::DescriptorChain c;
    c.readable.push_back({GuestAddress(kBuf), static_cast<uint32_t>(pfns.size() * 4)});
    c.readable_bytes = c.readable.back().len;
    return c;
  }
  static virtio::DescriptorChain report(const std::vector<std::pair<uint64_t, uint32_t>>& ranges) {
    virtio::DescriptorChain c;
    for (auto [addr, len] : ranges) {
      c.writable.push_back({GuestAddress(addr), len});
      c.writable_bytes += len;
    }
    return c;
  }
  GuestMemory mem_ = touching_regions();
};

TEST_F(BalloonRequestTest, AdjacentPfnsMergeUpwardsAndDownwardsButNotAcrossRegions) {
  const auto r = parse_pfn_list(pfn_chain({4, 5, 3, 9, 14, 15, 16, 17}), mem_);
  ASSERT_EQ(r.error, RequestError::kNone);
  EXPECT_EQ(r.pages, 8u);
  EXPECT_EQ(r.ranges, (std::vector<PageRange>{{GuestAddress(3 * kPage), 3 * kPage},
                                               {GuestAddress(9 * kPage), kPage},
                                               {GuestAddress(14 * kPage), 2 * kPage},   // region 0 ends at PFN 16
                                               {GuestAddress(16 * kPage), 2 * kPage}}));
}

TEST_F(BalloonRequestTest, PfnListsAreRefusedWhole) {
  EXPECT_EQ(parse_pfn_list(pfn_chain({1, 32}), mem_).error, RequestError::kOutOfRam);
  EXPECT_TRUE(parse_pfn_list(pfn_chain({1, 32}), mem_).ranges.empty());
  virtio::DescriptorChain empty;
  EXPECT_EQ(parse_pfn_list(empty, mem_).error, RequestError::kEmpty);
  auto odd = pfn_chain({1});
  odd.readable[0].len = odd.readable_bytes = 3;
  EXPECT_EQ(parse_pfn_list(odd, mem_).error, RequestError::kBadLength);
  auto writable = pfn_chain({1});
  writable.writable.push_back({GuestAddress(kBuf), 4});
  EXPECT_EQ(parse_pfn_list(writable, mem_).error, RequestError::kWrongDirection);
}

TEST_F(BalloonRequestTest, ReportsAreWholePagesInWritableBuffers) {
  auto r = parse_report(report({{0x2000, 0x2000}, {0x4000, 0x1000}, {0x10000, 0x1000}}), mem_);
  ASSERT_EQ(r.error, RequestError::kNone);
  EXPECT_EQ(r.pages, 4u);
  EXPECT_EQ(r.ranges, (std::vector<PageRange>{{GuestAddress(0x2000), 0x3000}, {GuestAddress(0x10000), 0x1000}}));
  EXPECT_EQ(parse_report(report({}), mem_).error, RequestError::kEmpty);
  EXPECT_EQ(parse_report(report({{0x2000, 0}}), mem_).error, RequestError::kMisaligned);
  EXPECT_EQ(parse_report(report({{0x2001, 0x1000}}), mem_).error, RequestError::kMisaligned);
  EXPECT_EQ(parse_report(report({{0x1f000, 0x2000}}), mem_).error, RequestError::kOutOfRam);
  r = parse_report(report({{0x2000, 0x1000}, {0x40000, 0x1000}}), mem_);
  EXPECT_EQ(r.error, RequestError::kOutOfRam);
  EXPECT_TRUE(r.ranges.empty());
  EXPECT_EQ(r.pages, 0u);
}

TEST_F(BalloonRequestTest, StatsAreTenByteTagValuePairs) {
  uint8_t raw[20] = {};
  const uint16_t tag = 4, other = 77;
  const uint64_t val = 0x1122334455667788ull;
  std::memcpy(raw, &tag, 2);
  std::memcpy(raw + 2, &val, 8);
  std::memcpy(raw + 10, &other, 2);
  ASSERT_TRUE(mem_.write_bytes(GuestAddress(kBuf), raw));
  virtio::DescriptorChain c;
  c.readable = {{GuestAddress(kBuf), 7}, {GuestAddress(kBuf + 7), 13}};  // split mid-entry
  c.readable_bytes = 20;
  auto r = parse_stats(c, mem_);
  ASSERT_EQ(r.error, RequestError::kNone);
  EXPECT_EQ(r.stats, (std::vector<BalloonStat>{{4, val}, {77, 0}}));
  c.readable_bytes = 19;
  c.readable[1].len = 12;
  EXPECT_EQ(parse_stats(c, mem_).error, RequestError::kBadLength);
  c.readable = {{GuestAddress(kBuf), kStatBytes * (kMaxStatsPerRequest + 1)}};
  c.readable_bytes = c.readable[0].len;
  EXPECT_EQ(parse_stats(c, mem_).error, RequestError::kTooLarge);
}

}  // namespace
}  // namespace ksbox::devices::balloon
