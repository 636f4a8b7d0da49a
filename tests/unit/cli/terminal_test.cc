#include "cli/terminal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "cli_test_util.h"
#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {
namespace {

using testing::is_raw;
using testing::open_pty;
using testing::Pty;
using testing::same_attrs;
using testing::term_attrs;

TEST(RawModeGuard, RawWhileAliveAndRestoredAfter) {
  Pty pty = open_pty();
  const termios before = term_attrs(pty.slave.get());
  ASSERT_FALSE(is_raw(before));
  {
    RawModeGuard guard(pty.slave.get());
    EXPECT_TRUE(guard.active());
    EXPECT_TRUE(is_raw(term_attrs(pty.slave.get())));
    EXPECT_TRUE(same_attrs(guard.saved(), before));
  }
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before));
}

TEST(RawModeGuard, RestoredWhenAnExceptionUnwinds) {
  Pty pty = open_pty();
  const termios before = term_attrs(pty.slave.get());
  try {
    RawModeGuard guard(pty.slave.get());
    ASSERT_TRUE(is_raw(term_attrs(pty.slave.get())));
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before));
}

TEST(RawModeGuard, ExplicitRestoreIsIdempotent) {
  Pty pty = open_pty();
  const termios before = term_attrs(pty.slave.get());
  RawModeGuard guard(pty.slave.get());
  guard.restore();
  EXPECT_FALSE(guard.active());
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before));
  // Changes made after the restore are not undone by the destructor.
  termios changed = before;
  changed.c_lflag &= ~ECHO;
  ASSERT_EQ(::tcsetattr(pty.slave.get(), TCSANOW, &changed), 0);
  guard.restore();
  EXPECT_FALSE(term_attrs(pty.slave.get()).c_lflag & ECHO);
}

TEST(RawModeGuard, CrashPathRestoresTheActiveGuardsTerminal) {
  Pty pty = open_pty();
  const termios before = term_attrs(pty.slave.get());
  RawModeGuard guard(pty.slave.get());
  restore_terminal_on_crash();
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before));
  restore_terminal_on_crash();  // nothing registered any more: a no-op
  EXPECT_TRUE(same_attrs(term_attrs(pty.slave.get()), before));
}

TEST(RawModeGuard, RefusesANonTerminal) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  EXPECT_THROW(RawModeGuard g(r.get()), Error);
  restore_terminal_on_crash();  // the failed guard left nothing registered
}

TEST(WindowSize, ReadsTheTerminalSizeAndFallsBackTo24x80) {
  Pty pty = open_pty();
  winsize ws{};
  ws.ws_row = 50;
  ws.ws_col = 132;
  ASSERT_EQ(::ioctl(pty.master.get(), TIOCSWINSZ, &ws), 0);
  EXPECT_EQ(window_size(pty.slave.get()), (WindowSize{50, 132}));
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  EXPECT_EQ(window_size(r.get()), std::nullopt);
  EXPECT_EQ(window_size(-1), std::nullopt);
  EXPECT_EQ(terminal_size_or_default(r.get(), pty.slave.get()), (WindowSize{50, 132}));
  EXPECT_EQ(terminal_size_or_default(r.get(), w.get()), kDefaultWindowSize);
  // A terminal that reports 0x0 (never sized) counts as unknown.
  ws = {};
  ASSERT_EQ(::ioctl(pty.master.get(), TIOCSWINSZ, &ws), 0);
  EXPECT_EQ(terminal_size_or_default(pty.slave.get(), r.get()), kDefaultWindowSize);
}

}  // namespace
}  // namespace ksbox::cli
