#include "vmm/panic_watcher.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace ksbox {
namespace {

using Event = PanicWatcher::Event;

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

constexpr std::string_view kPanicLine =
    "[  1.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n";
constexpr std::string_view kReason = "Attempted to kill init! exitcode=0x00000100";
constexpr std::string_view kEndLine =
    "[  1.3] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100 ]---\r\n";

TEST(PanicWatcherTest, PanicLineGivesPanicStartedAndReason) {
  PanicWatcher w;
  EXPECT_FALSE(w.reason().has_value());
  EXPECT_EQ(w.feed(bytes(kPanicLine)), Event::PanicStarted);
  ASSERT_TRUE(w.reason().has_value());
  EXPECT_EQ(*w.reason(), kReason);
}

TEST(PanicWatcherTest, BytesSplitAcrossManyFeedsStillWork) {
  PanicWatcher w;
  const std::string text = "[  0.9] Booting\r\n" + std::string(kPanicLine);
  int started = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const Event e = w.feed(bytes(std::string_view(text).substr(i, 1)));
    if (e == Event::PanicStarted) {
      ++started;
      EXPECT_EQ(i, text.size() - 1) << "event reported before the line ended";
    } else {
      EXPECT_EQ(e, Event::None);
    }
  }
  EXPECT_EQ(started, 1);
  ASSERT_TRUE(w.reason().has_value());
  EXPECT_EQ(*w.reason(), kReason);
}

TEST(PanicWatcherTest, ChunksOfUnevenSize) {
  PanicWatcher w;
  const std::string_view l = kPanicLine;
  EXPECT_EQ(w.feed(bytes(l.substr(0, 20))), Event::None);
  EXPECT_EQ(w.feed(bytes(l.substr(20, 17))), Event::None);
  EXPECT_EQ(w.feed(bytes(l.substr(37))), Event::PanicStarted);
  EXPECT_EQ(*w.reason(), kReason);
}

TEST(PanicWatcherTest, EndLineGivesPanicEnded) {
  PanicWatcher w;
  EXPECT_EQ(w.feed(bytes(kPanicLine)), Event::PanicStarted);
  EXPECT_EQ(w.feed(bytes("Kernel Offset: disabled\r\n")), Event::None);
  EXPECT_EQ(w.feed(bytes(kEndLine)), Event::PanicEnded);
  EXPECT_EQ(*w.reason(), kReason) << "the end line must not replace the reason";
}

TEST(PanicWatcherTest, StartAndEndInOneFeedReportsTheStrongest) {
  PanicWatcher w;
  const std::string both = std::string(kPanicLine) + "Call Trace:\n" + std::string(kEndLine);
  EXPECT_EQ(w.feed(bytes(both)), Event::PanicEnded);
  EXPECT_EQ(*w.reason(), kReason);
}

TEST(PanicWatcherTest, EndLineWithoutAPanicIsIgnored) {
  PanicWatcher w;
  EXPECT_EQ(w.feed(bytes(kEndLine)), Event::None);
  EXPECT_FALSE(w.reason().has_value());
}

TEST(PanicWatcherTest, OnlyTheFirstPanicCounts) {
  PanicWatcher w;
  EXPECT_EQ(w.feed(bytes(kPanicLine)), Event::PanicStarted);
  EXPECT_EQ(w.feed(bytes("Kernel panic - not syncing: second\n")), Event::None);
  EXPECT_EQ(*w.reason(), kReason);
}

TEST(PanicWatcherTest, UnrelatedLinesGiveNone) {
  PanicWatcher w;
  EXPECT_EQ(w.feed(bytes("[  0.0] Linux version 6.6\r\n")), Event::None);
  EXPECT_EQ(w.feed(bytes("Kernel panic - not syncing")), Event::None);  // no newline yet
  EXPECT_EQ(w.feed(bytes("\n")), Event::None);  // no ": " after the marker
  EXPECT_EQ(w.feed(bytes("kernel panic - not syncing: lowercase\n")), Event::None);
  EXPECT_EQ(w.feed(bytes("")), Event::None);
  EXPECT_FALSE(w.reason().has_value());
}

TEST(PanicWatcherTest, OverlongLineIsTruncatedNotBuffered) {
  PanicWatcher w;
  // A line longer than kMaxLine: the marker beyond the limit is never seen,
  // which shows the buffer stopped growing at kMaxLine.
  std::string junk(PanicWatcher::kMaxLine, 'x');
  junk += "Kernel panic - not syncing: hidden\n";
  EXPECT_EQ(w.feed(bytes(junk)), Event::None);
  EXPECT_FALSE(w.reason().has_value());

  // Megabytes without a newline, then a normal panic line: the overlong line
  // is dropped at the newline and the next line is parsed normally.
  const std::string chunk(64 * 1024, 'y');
  for (int i = 0; i < 64; ++i) ASSERT_EQ(w.feed(bytes(chunk)), Event::None);
  EXPECT_EQ(w.feed(bytes("\n")), Event::None);
  EXPECT_EQ(w.feed(bytes(kPanicLine)), Event::PanicStarted);
  EXPECT_EQ(*w.reason(), kReason);
}

TEST(PanicWatcherTest, ReasonIsBoundedByKMaxLine) {
  PanicWatcher w;
  const std::string line = "Kernel panic - not syncing: " + std::string(100000, 'r') + "\n";
  EXPECT_EQ(w.feed(bytes(line)), Event::PanicStarted);
  ASSERT_TRUE(w.reason().has_value());
  EXPECT_LE(w.reason()->size(), PanicWatcher::kMaxLine);
  EXPECT_GT(w.reason()->size(), 0u);
}

}  // namespace
}  // namespace ksbox
