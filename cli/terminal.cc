#include "cli/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "vmm/error.h"

namespace ksbox::cli {
namespace {

// The settings of the active guard, for restore_terminal_on_crash(). A plain
// copy (not a pointer to the guard) so that the crash path reads no object
// that may be half-destroyed.
struct CrashSlot {
  std::atomic<int> fd{-1};
  termios saved{};
};
CrashSlot g_crash_slot;

int set_attr(int fd, const termios& t) {
  int r = 0;
  do {
    r = ::tcsetattr(fd, TCSANOW, &t);
  } while (r != 0 && errno == EINTR);
  return r;
}

}  // namespace

std::optional<WindowSize> window_size(int fd) {
  winsize ws{};
  if (fd < 0 || ::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return std::nullopt;
  return WindowSize{ws.ws_row, ws.ws_col};
}

WindowSize terminal_size_or_default(int fd_a, int fd_b) {
  if (auto ws = window_size(fd_a)) return *ws;
  if (auto ws = window_size(fd_b)) return *ws;
  return kDefaultWindowSize;
}

RawModeGuard::RawModeGuard(int fd) : fd_(fd) {
  if (::tcgetattr(fd_, &saved_) != 0) throw_errno("tcgetattr");
  termios raw = saved_;
  ::cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  // Register before switching, so that a crash right after still restores.
  g_crash_slot.saved = saved_;
  g_crash_slot.fd.store(fd_, std::memory_order_release);
  if (set_attr(fd_, raw) != 0) {
    const int err = errno;
    g_crash_slot.fd.store(-1, std::memory_order_release);
    errno = err;
    throw_errno("tcsetattr (raw mode)");
  }
  active_ = true;
}

RawModeGuard::~RawModeGuard() { restore(); }

void RawModeGuard::restore() noexcept {
  if (!active_) return;
  active_ = false;
  g_crash_slot.fd.store(-1, std::memory_order_release);
  // A hung-up terminal (SIGHUP) refuses this; there is nothing left to restore then.
  (void)set_attr(fd_, saved_);
}

void restore_terminal_on_crash() noexcept {
  const int fd = g_crash_slot.fd.exchange(-1, std::memory_order_acq_rel);
  if (fd >= 0) (void)::tcsetattr(fd, TCSANOW, &g_crash_slot.saved);
}

}  // namespace ksbox::cli
