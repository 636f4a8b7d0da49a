#include "vmm/panic_watcher.h"

#include <string_view>

namespace ksbox {
namespace {
constexpr std::string_view kPanic = "Kernel panic - not syncing: ";
constexpr std::string_view kPanicEnd = "---[ end Kernel panic - not syncing";
}  // namespace

PanicWatcher::Event PanicWatcher::feed(std::span<const uint8_t> bytes) {
  Event strongest = Event::None;
  for (uint8_t b : bytes) {
    if (b == '\n') {
      const Event e = end_line();
      if (e > strongest) strongest = e;
    } else if (b != '\r' && line_.size() < kMaxLine) {
      line_.push_back(static_cast<char>(b));
    }
  }
  return strongest;
}

PanicWatcher::Event PanicWatcher::end_line() {
  std::string line;
  line.swap(line_);
  if (line.find(kPanicEnd) != std::string::npos) return reason_ ? Event::PanicEnded : Event::None;
  const auto at = line.find(kPanic);
  if (at == std::string::npos || reason_) return Event::None;
  reason_ = line.substr(at + kPanic.size());
  return Event::PanicStarted;
}

}  // namespace ksbox
