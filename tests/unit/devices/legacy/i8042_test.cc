#include "devices/legacy/i8042.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>

#include "vmm/bus.h"

namespace ksbox::devices {
namespace {

TEST(I8042Test, ResetCommandOnPort64CallsTheCallbackOnce) {
  int resets = 0;
  I8042 kbd([&] { ++resets; });
  const std::array<uint8_t, 1> cmd{0xfe};
  kbd.write(4, cmd);
  EXPECT_EQ(resets, 1);
}

TEST(I8042Test, OtherValuesAndOffsetsDoNothing) {
  int resets = 0;
  I8042 kbd([&] { ++resets; });
  for (uint8_t v : std::array<uint8_t, 5>{0x00, 0xff, 0xfd, 0xd1, 0x60}) kbd.write(4, std::array<uint8_t, 1>{v});
  kbd.write(0, std::array<uint8_t, 1>{0xfe});  // data port
  kbd.write(1, std::array<uint8_t, 1>{0xfe});
  kbd.write(3, std::array<uint8_t, 1>{0xfe});
  kbd.write(4, std::span<const uint8_t>());
  EXPECT_EQ(resets, 0);
}

TEST(I8042Test, ReadsReturnZero) {
  I8042 kbd([] {});
  for (uint64_t off : {0u, 4u}) {
    std::array<uint8_t, 2> b{0xaa, 0xaa};
    kbd.read(off, b);
    EXPECT_EQ(b[0], 0) << off;
    EXPECT_EQ(b[1], 0) << off;
  }
}

TEST(I8042Test, ResetThroughThePioBus) {
  int resets = 0;
  Bus pio("pio");
  pio.add(I8042::kDataPort, I8042::kCommandPort - I8042::kDataPort + 1, std::make_shared<I8042>([&] { ++resets; }));
  EXPECT_TRUE(pio.write(0x64, std::array<uint8_t, 1>{0xfe}));
  EXPECT_EQ(resets, 1);
  EXPECT_TRUE(pio.write(0x60, std::array<uint8_t, 1>{0xfe}));
  EXPECT_EQ(resets, 1);
  std::array<uint8_t, 1> status{0xff};
  EXPECT_TRUE(pio.read(0x64, status));
  EXPECT_EQ(status[0], 0) << "controller ready";
}

}  // namespace
}  // namespace ksbox::devices
