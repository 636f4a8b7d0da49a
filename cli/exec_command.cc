#include "cli/exec_command.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "cli/exec_session.h"
#include "cli/exit_codes.h"
#include "cli/signals.h"
#include "cli/terminal.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

// Whether fd 0 gives no input at all: closed, or /dev/null. Then the agent is
// told up front and we never poll it.
bool stdin_is_empty() {
  struct stat st {};
  if (::fstat(STDIN_FILENO, &st) != 0) return errno == EBADF;
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

void print_error(const std::string& msg) { std::fprintf(stderr, "ksbox: %s\n", msg.c_str()); }

}  // namespace

int run_exec_command(ExecCommand cmd) {
  ignore_sigpipe();
  // Blocked for the rest of the process's life (see the header): while we
  // connect, they cancel the wait; during the session they are forwarded.
  SignalFd signals({SIGINT, SIGTERM, SIGHUP, SIGQUIT}, /*restore_mask=*/false);

  protocol::ExecRequest& req = cmd.request;
  SessionIo io;
  if (stdin_is_empty()) {
    req.flags |= protocol::kExecFlagStdinClosed;
    io.in = -1;
  }
  if (const auto e = protocol::validate(req); e != protocol::ProtoError::kOk) {
    print_error(fmt::format("cannot send this command: {}", protocol::to_string(e)));
    return kExitUsage;
  }

  UniqueFd conn;
  try {
    ConnectPolicy policy;
    policy.timeout = cmd.connect_timeout;
    policy.cancel_fd = signals.fd();
    conn = vsock_connect(cmd.address, policy);
  } catch (const ConnectError& e) {
    if (e.reason() == ConnectError::Reason::kCancelled) {
      const int signo = signals.read_one().value_or(SIGINT);
      print_error(fmt::format("{} while connecting", ::strsignal(signo)));
      return kExitSignalBase + signo;
    }
    print_error(e.what());
    return kExitConnection;
  } catch (const Error& e) {
    print_error(e.what());
    return kExitConnection;
  }

  std::optional<RawModeGuard> raw;
  if (cmd.tty) {
    signals.add(SIGWINCH);  // before reading the size, so no change is missed
    req.flags |= protocol::kExecFlagPty;
    const WindowSize ws = terminal_size_or_default(STDIN_FILENO, STDOUT_FILENO);
    req.rows = ws.rows;
    req.cols = ws.cols;
    io.tty_fd = ::isatty(STDIN_FILENO) ? STDIN_FILENO : ::isatty(STDOUT_FILENO) ? STDOUT_FILENO : -1;
    // After connecting, so that a slow connect can still be interrupted with ^C.
    if (::isatty(STDIN_FILENO)) raw.emplace(STDIN_FILENO);
  }
  io.signals = &signals;

  SessionOptions opts;
  opts.detach_key = cmd.detach_key;
  const SessionResult r = run_exec_session(conn.get(), req, io, opts);
  conn.reset();  // the agent hangs the command up when we leave it
  // Still raw here, hence the explicit \r: the line looks the same either way.
  if (r.kind == SessionResult::Kind::kDetached) std::fputs("\r\nksbox: detached\r\n", stderr);
  if (raw) raw->restore();

  switch (r.kind) {
    case SessionResult::Kind::kExited:
    case SessionResult::Kind::kDetached:
      break;
    case SessionResult::Kind::kAgentError:
    case SessionResult::Kind::kInterrupted:
    case SessionResult::Kind::kFailed:
      print_error(r.message);
      break;
  }
  return r.exit_status;
}

}  // namespace ksbox::cli
