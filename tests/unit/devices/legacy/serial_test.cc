#include "devices/legacy/serial.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace ksbox::devices {
namespace {

constexpr uint64_t kRbrThr = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

class SerialTest : public ::testing::Test {
 protected:
  int irqs = 0;
  std::string out;
  Serial uart{[this] { ++irqs; }, [this](std::span<const uint8_t> b) { out.append(b.begin(), b.end()); }};

  uint8_t rd(uint64_t off) {
    std::array<uint8_t, 1> b{0xee};
    uart.read(off, b);
    return b[0];
  }
  void wr(uint64_t off, uint8_t v) {
    const std::array<uint8_t, 1> b{v};
    uart.write(off, b);
  }
  void input(const std::string& s) {
    uart.enqueue_input({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }
};

TEST_F(SerialTest, ThrBytesReachTheSinkInOrder) {
  for (char c : std::string("hello\r\n")) wr(kRbrThr, static_cast<uint8_t>(c));
  EXPECT_EQ(out, "hello\r\n");
  EXPECT_EQ(irqs, 0) << "no interrupts enabled";
}

TEST_F(SerialTest, ThreInterruptIsRaisedAndAcknowledgedByIir) {
  wr(kIer, 0x02);
  EXPECT_EQ(irqs, 1) << "enabling THRE with an empty THR interrupts at once";
  EXPECT_EQ(rd(kIir), 0x02) << "THR empty";
  EXPECT_EQ(rd(kIir), 0x01) << "acknowledged: no interrupt pending";
  wr(kRbrThr, 'x');
  EXPECT_EQ(irqs, 2) << "each transmitted byte empties THR again";
  EXPECT_EQ(rd(kIir), 0x02);
  EXPECT_EQ(rd(kIir), 0x01);
  EXPECT_EQ(out, "x");
}

TEST_F(SerialTest, ReenablingThreDoesNotRaiseTwice) {
  wr(kIer, 0x02);
  wr(kIer, 0x02);  // already enabled and pending
  EXPECT_EQ(rd(kIir), 0x02);
  wr(kIer, 0x02);
  EXPECT_EQ(rd(kIir), 0x01) << "rewriting the same IER must not re-arm THRE";
  wr(kIer, 0x00);
  wr(kIer, 0x02);
  EXPECT_EQ(rd(kIir), 0x02) << "a 0 -> 1 transition re-arms it";
}

TEST_F(SerialTest, IerReadsBack) {
  wr(kIer, 0x0f);
  EXPECT_EQ(rd(kIer), 0x0f);
  wr(kIer, 0xff);
  EXPECT_EQ(rd(kIer), 0x0f) << "upper bits are reserved";
}

TEST_F(SerialTest, LsrShowsThreTemtAndDataReady) {
  EXPECT_EQ(rd(kLsr), 0x60);
  input("a");
  EXPECT_EQ(rd(kLsr), 0x61);
  EXPECT_EQ(rd(kRbrThr), 'a');
  EXPECT_EQ(rd(kLsr), 0x60);
}

TEST_F(SerialTest, RbrReturnsQueuedBytesInOrder) {
  input("abc");
  input("de");
  std::string got;
  while (rd(kLsr) & 0x01) got.push_back(static_cast<char>(rd(kRbrThr)));
  EXPECT_EQ(got, "abcde");
  EXPECT_EQ(rd(kRbrThr), 0) << "empty RBR";
}

TEST_F(SerialTest, RxInterrupt) {
  input("z");
  EXPECT_EQ(irqs, 0) << "RX interrupt not enabled";
  wr(kIer, 0x01);
  EXPECT_EQ(irqs, 1) << "enabling RX with data waiting interrupts";
  EXPECT_EQ(rd(kIir), 0x04);
  EXPECT_EQ(rd(kRbrThr), 'z');
  EXPECT_EQ(rd(kIir), 0x01);
  const int before = irqs;
  input("q");
  EXPECT_EQ(irqs, before + 1);
}

TEST_F(SerialTest, RxFifoIsBounded) {
  input(std::string(Serial::kRxFifoSize + 36, 'k'));
  input("overflow");
  size_t n = 0;
  while ((rd(kLsr) & 0x01) && n < 10 * Serial::kRxFifoSize) {
    EXPECT_EQ(rd(kRbrThr), 'k');
    ++n;
  }
  EXPECT_EQ(n, Serial::kRxFifoSize);
}

TEST_F(SerialTest, FcrEnablesFifoAndClearsRx) {
  wr(kIir, 0x01);  // FCR: FIFO enable
  EXPECT_EQ(rd(kIir) & 0xc0, 0xc0);
  input("abc");
  wr(kIir, 0x03);  // enable + clear RX
  EXPECT_EQ(rd(kLsr) & 0x01, 0);
  wr(kIir, 0x00);
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(SerialTest, LoopbackModemStatusAndData) {
  EXPECT_EQ(rd(kMsr), 0xb0) << "DCD | DSR | CTS outside loopback";
  wr(kMcr, 0x1a);  // LOOP | OUT2 | RTS
  EXPECT_EQ(rd(kMcr), 0x1a);
  EXPECT_EQ(rd(kMsr) & 0xf0, 0x90) << "RTS -> CTS, OUT2 -> DCD";
  wr(kRbrThr, 0xa5);
  EXPECT_TRUE(out.empty()) << "loopback bytes must not reach the sink";
  EXPECT_EQ(rd(kLsr) & 0x01, 0x01);
  EXPECT_EQ(rd(kRbrThr), 0xa5);
  wr(kMcr, 0x1f);
  EXPECT_EQ(rd(kMsr) & 0xf0, 0xf0);
  wr(kMcr, 0x08);  // loopback off
  wr(kRbrThr, 'o');
  EXPECT_EQ(out, "o");
}

TEST_F(SerialTest, DlabSwitchesToTheDivisorLatch) {
  wr(kIer, 0x00);
  input("r");
  wr(kLcr, 0x83);  // DLAB | 8N1
  EXPECT_EQ(rd(kLcr), 0x83);
  wr(kRbrThr, 0x01);  // DLL
  wr(kIer, 0x02);     // DLM, not IER
  EXPECT_TRUE(out.empty()) << "DLL write went to the sink";
  EXPECT_EQ(rd(kRbrThr), 0x01);
  EXPECT_EQ(rd(kIer), 0x02);
  EXPECT_EQ(irqs, 0);
  wr(kLcr, 0x03);
  EXPECT_EQ(rd(kIer), 0x00) << "IER untouched by the DLM write";
  EXPECT_EQ(rd(kRbrThr), 'r') << "reading DLL did not consume input";
  wr(kRbrThr, 'x');
  EXPECT_EQ(out, "x");
  wr(kLcr, 0x83);
  EXPECT_EQ(rd(kRbrThr), 0x01) << "divisor kept";
}

TEST_F(SerialTest, ScratchRegister) {
  wr(kScr, 0x5c);
  EXPECT_EQ(rd(kScr), 0x5c);
}

TEST_F(SerialTest, WiderReadsZeroTheUpperBytes) {
  std::array<uint8_t, 4> b{0xee, 0xee, 0xee, 0xee};
  uart.read(kLsr, b);
  EXPECT_EQ(b[0], 0x60);
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(b[3], 0);
}

}  // namespace
}  // namespace ksbox::devices
