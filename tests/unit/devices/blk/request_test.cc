// parse_request(): every framing, every refusal, the limits.
#include "devices/blk/request.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/devices/virtio/fake_driver.h"

namespace ksbox::devices::blk {
namespace {

using virtio::DescriptorChain;
using Outcome = ParseResult::Outcome;

constexpr uint64_t kHdr = 0x4000, kData = 0x5000, kStatus = 0x9000;

class RequestTest : public ::testing::Test {
 protected:
  RequestTest() {
    limits_.capacity_sectors = 100;
    limits_.flush = limits_.discard = limits_.write_zeroes = true;
    limits_.max_segments = 4;
    limits_.max_discard_sectors = limits_.max_write_zeroes_sectors = 64;
    limits_.max_discard_seg = limits_.max_write_zeroes_seg = 2;
  }
  void header(uint32_t type, uint64_t sector) {
    virtio_blk_outhdr h{type, 0, sector};
    ASSERT_TRUE(mem_.write_obj(GuestAddress(kHdr), h));
  }
  void readable(uint64_t addr, uint32_t len) {
    chain_.readable.push_back({GuestAddress(addr), len});
    chain_.readable_bytes += len;
  }
  void writable(uint64_t addr, uint32_t len) {
    chain_.writable.push_back({GuestAddress(addr), len});
    chain_.writable_bytes += len;
  }
  // The usual layout: header, data, status, in three descriptors.
  void request(uint32_t type, uint64_t sector, uint32_t data_len) {
    header(type, sector);
    readable(kHdr, 16);
    if (data_len) type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID ? writable(kData, data_len) : readable(kData, data_len);
    writable(kStatus, 1);
  }
  void range(size_t i, uint64_t sector, uint32_t sectors, uint32_t flags = 0) {
    virtio_blk_discard_write_zeroes r{sector, sectors, flags};
    ASSERT_TRUE(mem_.write_obj(GuestAddress(kData + 16 * i), r));
  }
  ParseResult parse() { return parse_request(chain_, mem_, limits_); }
  void expect_reply(ParseError e, uint8_t status = VIRTIO_BLK_S_IOERR) {
    const auto r = parse();
    EXPECT_EQ(r.outcome, Outcome::kReply) << to_string(e);
    EXPECT_EQ(r.error, e) << to_string(r.error) << " instead of " << to_string(e);
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.request.status, mem_.slice(GuestAddress(kStatus), 1)->data());
  }

  GuestMemory mem_ = virtio::testing::make_two_region_memory();
  DescriptorChain chain_;
  BlkLimits limits_;
};

TEST_F(RequestTest, ReadInThreeDescriptors) {
  request(VIRTIO_BLK_T_IN, 10, 1024);
  const auto r = parse();
  ASSERT_EQ(r.outcome, Outcome::kRun);
  EXPECT_EQ(r.request.type, uint32_t{VIRTIO_BLK_T_IN});
  EXPECT_EQ(r.request.sector, 10u);
  EXPECT_EQ(r.request.data_bytes, 1024u);
  ASSERT_EQ(r.request.data.size(), 1u);
  EXPECT_EQ(r.request.data[0].iov_base, mem_.slice(GuestAddress(kData), 1)->data());
  EXPECT_EQ(r.request.status, mem_.slice(GuestAddress(kStatus), 1)->data());
  EXPECT_EQ(r.request.used_len, 1025u);
}

TEST_F(RequestTest, AnyFramingWorks) {
  // Header split in two, data and status sharing one descriptor.
  header(VIRTIO_BLK_T_IN, 99);
  readable(kHdr, 5);
  readable(kHdr + 5, 11);
  writable(kData, 512 + 1);
  const auto r = parse();
  ASSERT_EQ(r.outcome, Outcome::kRun);
  EXPECT_EQ(r.request.sector, 99u);
  EXPECT_EQ(r.request.data_bytes, 512u);
  EXPECT_EQ(r.request.status, mem_.slice(GuestAddress(kData + 512), 1)->data());
}

TEST_F(RequestTest, WriteWithHeaderAndDataInOneDescriptor) {
  header(VIRTIO_BLK_T_OUT, 0);
  readable(kHdr, 16 + 512);
  writable(kStatus, 1);
  const auto r = parse();
  ASSERT_EQ(r.outcome, Outcome::kRun);
  ASSERT_EQ(r.request.data.size(), 1u);
  EXPECT_EQ(r.request.data[0].iov_base, mem_.slice(GuestAddress(kHdr + 16), 1)->data());
  EXPECT_EQ(r.request.data[0].iov_len, 512u);
  EXPECT_EQ(r.request.used_len, 1u);
}

TEST_F(RequestTest, NoWritableByteCannotBeAnswered) {
  header(VIRTIO_BLK_T_IN, 0);
  readable(kHdr, 16);
  const auto r = parse();
  EXPECT_EQ(r.outcome, Outcome::kNoStatus);
  EXPECT_EQ(r.error, ParseError::kNoStatusByte);
}

TEST_F(RequestTest, ShortHeader) {
  header(VIRTIO_BLK_T_IN, 0);
  readable(kHdr, 15);
  writable(kStatus, 1);
  expect_reply(ParseError::kShortHeader);
}

TEST_F(RequestTest, DataMustBeWholeSectors) {
  request(VIRTIO_BLK_T_OUT, 0, 513);
  expect_reply(ParseError::kBadLength);
}

TEST_F(RequestTest, SectorRangesStayInsideTheDisk) {
  request(VIRTIO_BLK_T_IN, 99, 512);  // the last sector: fine
  EXPECT_EQ(parse().outcome, Outcome::kRun);
  chain_ = {};
  request(VIRTIO_BLK_T_IN, 99, 1024);  // one past the end
  expect_reply(ParseError::kOutOfRange);
  chain_ = {};
  request(VIRTIO_BLK_T_OUT, 100, 512);
  expect_reply(ParseError::kOutOfRange);
  chain_ = {};
  request(VIRTIO_BLK_T_IN, UINT64_MAX, 512);  // sector + count overflows
  expect_reply(ParseError::kOutOfRange);
  chain_ = {};
  request(VIRTIO_BLK_T_IN, UINT64_MAX / 512, 512);  // byte offset would overflow
  expect_reply(ParseError::kOutOfRange);
}

TEST_F(RequestTest, WritesToAReadOnlyDiskFail) {
  limits_.read_only = true;
  request(VIRTIO_BLK_T_OUT, 0, 512);
  expect_reply(ParseError::kReadOnly);
  chain_ = {};
  request(VIRTIO_BLK_T_DISCARD, 0, 16);
  range(0, 0, 8);
  expect_reply(ParseError::kReadOnly);
  chain_ = {};
  request(VIRTIO_BLK_T_IN, 0, 512);
  EXPECT_EQ(parse().outcome, Outcome::kRun);
}

TEST_F(RequestTest, DataInTheWrongDirection) {
  header(VIRTIO_BLK_T_IN, 0);
  readable(kHdr, 16 + 512);  // a read with data to write
  writable(kData, 512);
  writable(kStatus, 1);
  expect_reply(ParseError::kWrongDirection);
  chain_ = {};
  request(VIRTIO_BLK_T_OUT, 0, 512);
  chain_.writable = {{GuestAddress(kStatus), 2}};
  chain_.writable_bytes = 2;
  const auto r = parse();
  EXPECT_EQ(r.error, ParseError::kWrongDirection);
  EXPECT_EQ(r.request.status, mem_.slice(GuestAddress(kStatus + 1), 1)->data());  // still the last byte
}

TEST_F(RequestTest, TooManySegments) {
  header(VIRTIO_BLK_T_OUT, 0);
  readable(kHdr, 16);
  for (int i = 0; i < 5; ++i) readable(kData + 512 * i, 512);
  writable(kStatus, 1);
  expect_reply(ParseError::kTooManySegments);
}

TEST_F(RequestTest, UnknownTypesAndUnnegotiatedFeaturesAreUnsupported) {
  for (uint32_t type : {2u, 3u, 10u, 14u, 0x80000001u}) {
    chain_ = {};
    request(type, 0, 0);
    expect_reply(ParseError::kUnsupported, VIRTIO_BLK_S_UNSUPP);
  }
  limits_.flush = false;
  chain_ = {};
  request(VIRTIO_BLK_T_FLUSH, 0, 0);
  expect_reply(ParseError::kUnsupported, VIRTIO_BLK_S_UNSUPP);
  limits_.discard = false;
  chain_ = {};
  request(VIRTIO_BLK_T_DISCARD, 0, 16);
  expect_reply(ParseError::kUnsupported, VIRTIO_BLK_S_UNSUPP);
}

TEST_F(RequestTest, FlushCarriesNoData) {
  request(VIRTIO_BLK_T_FLUSH, 0, 0);
  EXPECT_EQ(parse().outcome, Outcome::kRun);
  chain_ = {};
  request(VIRTIO_BLK_T_FLUSH, 0, 512);
  expect_reply(ParseError::kWrongDirection);
}

TEST_F(RequestTest, GetIdTakesUpTo20Bytes) {
  request(VIRTIO_BLK_T_GET_ID, 0, 64);
  auto r = parse();
  ASSERT_EQ(r.outcome, Outcome::kRun);
  EXPECT_EQ(r.request.data_bytes, 20u);
  chain_ = {};
  request(VIRTIO_BLK_T_GET_ID, 0, 7);
  r = parse();
  ASSERT_EQ(r.outcome, Outcome::kRun);
  EXPECT_EQ(r.request.data_bytes, 7u);
}

TEST_F(RequestTest, DiscardRanges) {
  request(VIRTIO_BLK_T_DISCARD, 0, 32);
  range(0, 8, 16);
  range(1, 90, 10);
  auto r = parse();
  ASSERT_EQ(r.outcome, Outcome::kRun);
  ASSERT_EQ(r.request.ranges.size(), 2u);
  EXPECT_EQ(r.request.ranges[1].sector, 90u);
  EXPECT_EQ(r.request.ranges[1].sectors, 10u);
  range(1, 91, 10);  // past the end
  expect_reply(ParseError::kOutOfRange);
  range(1, 0, 65);  // above max_discard_sectors
  expect_reply(ParseError::kRangeTooLarge);
  range(1, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);  // unmap is for write-zeroes only
  expect_reply(ParseError::kBadRangeFlags, VIRTIO_BLK_S_UNSUPP);
  range(1, 0, 8, 2);  // reserved bit
  expect_reply(ParseError::kBadRangeFlags, VIRTIO_BLK_S_UNSUPP);
  range(0, UINT64_MAX - 3, 8);
  range(1, 0, 8);
  expect_reply(ParseError::kOutOfRange);
}

TEST_F(RequestTest, RangePayloadMustBeWholeAndBounded) {
  for (uint32_t len : {0u, 15u, 17u, 48u}) {  // none, ragged, ragged, three (> max 2)
    chain_ = {};
    header(VIRTIO_BLK_T_WRITE_ZEROES, 0);
    readable(kHdr, 16);
    if (len) readable(kData, len);
    writable(kStatus, 1);
    expect_reply(ParseError::kBadRanges);
  }
}

TEST_F(RequestTest, WriteZeroesKeepsTheUnmapFlag) {
  request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16);
  range(0, 4, 4, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
  const auto r = parse();
  ASSERT_EQ(r.outcome, Outcome::kRun);
  ASSERT_EQ(r.request.ranges.size(), 1u);
  EXPECT_TRUE(r.request.ranges[0].unmap);
}

TEST(ParseStats, CountsByKind) {
  ParseStats s;
  s.count(ParseError::kOutOfRange);
  s.count(ParseError::kOutOfRange);
  s.count(ParseError::kShortHeader);
  EXPECT_EQ(s.get(ParseError::kOutOfRange), 2u);
  EXPECT_EQ(s.total(), 3u);
}

}  // namespace
}  // namespace ksbox::devices::blk
