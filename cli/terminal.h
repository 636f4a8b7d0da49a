// The user's terminal: raw mode for the length of a PTY session, and its size.
#pragma once

#include <termios.h>

#include <cstdint>
#include <optional>

namespace ksbox::cli {

struct WindowSize {
  uint16_t rows = 0;
  uint16_t cols = 0;
  bool operator==(const WindowSize&) const = default;
};
inline constexpr WindowSize kDefaultWindowSize{24, 80};

// TIOCGWINSZ on fd; nullopt if fd is not a terminal or reports a 0 size.
std::optional<WindowSize> window_size(int fd);

// The size of the first of `fds` that is a terminal, else 24x80.
WindowSize terminal_size_or_default(int fd_a, int fd_b);

// Puts a terminal in raw mode (no echo, no line editing, no signals from
// keys, no output processing) and restores the saved settings when
// destroyed or on restore(). Only one guard may be active at a time: it also
// registers itself for restore_terminal_on_crash().
class RawModeGuard {
 public:
  // Throws Error if fd is not a terminal or tcsetattr fails.
  explicit RawModeGuard(int fd);
  ~RawModeGuard();
  RawModeGuard(const RawModeGuard&) = delete;
  RawModeGuard& operator=(const RawModeGuard&) = delete;

  // Restores the saved settings now (idempotent, noexcept).
  void restore() noexcept;
  bool active() const { return active_; }
  const termios& saved() const { return saved_; }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// Async-signal-safe: restores the settings saved by the active RawModeGuard,
// if any. For std::terminate and fatal-signal paths, where destructors do
// not run.
void restore_terminal_on_crash() noexcept;

}  // namespace ksbox::cli
