// Spots a Linux kernel panic in the console stream, so a crashed guest ends
// the VMM with its reason instead of spinning forever. The guest could fake
// the line, but all it can achieve is stopping its own VM.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace ksbox {

class PanicWatcher {
 public:
  enum class Event { None, PanicStarted, PanicEnded };

  // Feeds console bytes; returns the most significant event in them.
  Event feed(std::span<const uint8_t> bytes);
  // The text after "Kernel panic - not syncing: " once a panic was seen.
  const std::optional<std::string>& reason() const { return reason_; }

  static constexpr size_t kMaxLine = 512;  // longer lines are truncated

 private:
  Event end_line();
  std::string line_;
  std::optional<std::string> reason_;
};

}  // namespace ksbox
