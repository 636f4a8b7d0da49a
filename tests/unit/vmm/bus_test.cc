#include "vmm/bus.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

#include "test_helpers.h"

namespace ksbox {
namespace {

// Records every access; reads return the low byte of (offset + i).
class RecordingDevice : public BusDevice {
 public:
  struct Access {
    bool write;
    uint64_t offset;
    std::vector<uint8_t> data;
  };
  void read(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(offset + i);
    log.push_back({false, offset, {data.begin(), data.end()}});
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    log.push_back({true, offset, {data.begin(), data.end()}});
  }
  std::vector<Access> log;
};

class BusTest : public ::testing::Test {
 protected:
  Bus bus{"pio"};
  std::shared_ptr<RecordingDevice> com1 = std::make_shared<RecordingDevice>();
  std::shared_ptr<RecordingDevice> kbd = std::make_shared<RecordingDevice>();
  void SetUp() override {
    bus.add(0x3f8, 8, com1);
    bus.add(0x60, 5, kbd);
  }
};

TEST_F(BusTest, DispatchesWithOffsetRelativeToBase) {
  std::array<uint8_t, 1> b{};
  EXPECT_TRUE(bus.read(0x3fd, b));
  ASSERT_EQ(com1->log.size(), 1u);
  EXPECT_FALSE(com1->log[0].write);
  EXPECT_EQ(com1->log[0].offset, 5u);
  EXPECT_EQ(b[0], 5);

  const std::array<uint8_t, 1> w{0x41};
  EXPECT_TRUE(bus.write(0x3f8, w));
  ASSERT_EQ(com1->log.size(), 2u);
  EXPECT_TRUE(com1->log[1].write);
  EXPECT_EQ(com1->log[1].offset, 0u);
  EXPECT_EQ(com1->log[1].data, std::vector<uint8_t>{0x41});

  EXPECT_TRUE(bus.write(0x64, w));
  ASSERT_EQ(kbd->log.size(), 1u);
  EXPECT_EQ(kbd->log[0].offset, 4u);
  EXPECT_EQ(bus.unhandled(), 0u);
}

TEST_F(BusTest, MultiByteAccessThatFitsIsDispatched) {
  std::array<uint8_t, 2> b{};
  EXPECT_TRUE(bus.read(0x3fe, b));  // last two bytes of the range
  ASSERT_EQ(com1->log.size(), 1u);
  EXPECT_EQ(com1->log[0].offset, 6u);
  EXPECT_EQ(com1->log[0].data.size(), 2u);
}

TEST_F(BusTest, AccessStraddlingTheRangeEndIsUnhandled) {
  std::array<uint8_t, 2> b{0, 0};
  EXPECT_FALSE(bus.read(0x3ff, b));
  EXPECT_EQ(b[0], 0xff);
  EXPECT_EQ(b[1], 0xff);
  const std::array<uint8_t, 4> w{1, 2, 3, 4};
  EXPECT_FALSE(bus.write(0x3fe, w));
  EXPECT_TRUE(com1->log.empty()) << "a straddling access reached the device";
  EXPECT_EQ(bus.unhandled(), 2u);
}

TEST_F(BusTest, UnmappedReadsAreAllOnesAndCounted) {
  std::array<uint8_t, 8> b{};
  EXPECT_FALSE(bus.read(0x80, b));
  for (uint8_t v : b) EXPECT_EQ(v, 0xff);
  EXPECT_EQ(bus.unhandled(), 1u);
  std::array<uint8_t, 1> one{};
  EXPECT_FALSE(bus.read(0x0, one));        // below every range
  EXPECT_FALSE(bus.read(0x400, one));      // just past com1
  EXPECT_FALSE(bus.read(UINT64_MAX, one)); // far above
  EXPECT_EQ(one[0], 0xff);
  EXPECT_EQ(bus.unhandled(), 4u);
  const std::array<uint8_t, 1> w{0};
  EXPECT_FALSE(bus.write(0x3f7, w));
  EXPECT_EQ(bus.unhandled(), 5u);
  EXPECT_TRUE(com1->log.empty());
  EXPECT_TRUE(kbd->log.empty());
}

TEST(BusAddTest, OverlappingRegistrationsThrow) {
  auto dev = std::make_shared<RecordingDevice>();
  Bus bus("mmio");
  bus.add(0x100, 0x10, dev);  // [0x100, 0x110)
  EXPECT_KSBOX_ERROR(bus.add(0xf8, 0x10, dev), "overlaps");   // ends inside (before)
  EXPECT_KSBOX_ERROR(bus.add(0x108, 0x10, dev), "overlaps");  // starts inside (after)
  EXPECT_KSBOX_ERROR(bus.add(0xf0, 0x40, dev), "overlaps");   // contains it
  EXPECT_KSBOX_ERROR(bus.add(0x104, 0x4, dev), "overlaps");   // contained
  EXPECT_KSBOX_ERROR(bus.add(0x100, 0x10, dev), "overlaps");  // identical
  EXPECT_KSBOX_ERROR(bus.add(0x10f, 1, dev), "overlaps");     // last byte
  EXPECT_KSBOX_ERROR(bus.add(0xff, 2, dev), "mmio");          // message names the bus

  // Touching neighbours are fine, and the failed adds left nothing behind.
  EXPECT_NO_THROW(bus.add(0xf0, 0x10, dev));
  EXPECT_NO_THROW(bus.add(0x110, 0x10, dev));
  std::array<uint8_t, 1> b{};
  EXPECT_FALSE(bus.read(0xe8, b));
  EXPECT_TRUE(bus.read(0x10f, b));
  ASSERT_FALSE(dev->log.empty());
  EXPECT_EQ(dev->log.back().offset, 0xfu);
}

TEST(BusAddTest, OverlapAcrossSeveralRangesThrows) {
  auto dev = std::make_shared<RecordingDevice>();
  Bus bus("mmio");
  bus.add(0x1000, 0x100, dev);
  bus.add(0x3000, 0x100, dev);
  EXPECT_THROW(bus.add(0x1800, 0x2000, dev), Error);  // swallows the second range only
  EXPECT_THROW(bus.add(0x0, 0x10000, dev), Error);    // swallows both
  EXPECT_NO_THROW(bus.add(0x2000, 0x1000, dev));      // exactly the gap
}

TEST(BusAddTest, EmptyOrWrappingRangesThrow) {
  auto dev = std::make_shared<RecordingDevice>();
  Bus bus("pio");
  EXPECT_THROW(bus.add(0x10, 0, dev), Error);
  EXPECT_THROW(bus.add(UINT64_MAX - 1, 4, dev), Error);
  EXPECT_THROW(bus.add(1, UINT64_MAX, dev), Error);
}

TEST(BusAddTest, HighMmioRangeDispatch) {
  auto dev = std::make_shared<RecordingDevice>();
  Bus bus("mmio");
  bus.add(0xd0000000, 0x200, dev);
  std::array<uint8_t, 4> b{};
  EXPECT_TRUE(bus.read(0xd00001fc, b));
  ASSERT_EQ(dev->log.size(), 1u);
  EXPECT_EQ(dev->log[0].offset, 0x1fcu);
  EXPECT_FALSE(bus.read(0xd00001fe, b));
  EXPECT_EQ(bus.unhandled(), 1u);
}

}  // namespace
}  // namespace ksbox
