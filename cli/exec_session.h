// The client side of one exec over an established agent connection: the
// Hello exchange, the ExecRequest, then a poll loop that pumps stdin to the
// agent and the command's output to our fds, forwards signals and window
// size changes, and ends with the command's status.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/exec_protocol.h"

namespace ksbox::cli {

class SignalFd;

struct SessionIo {
  int in = 0;    // stdin to forward; -1: none (the request should carry kExecFlagStdinClosed)
  int out = 1;   // StdoutData goes here
  int err = 2;   // StderrData goes here
  // Delivers SIGINT/SIGTERM/SIGHUP/SIGQUIT (forwarded as Signal) and SIGWINCH
  // (sent as Resize in PTY mode); nullptr: no signal handling.
  SignalFd* signals = nullptr;
  int tty_fd = -1;  // the terminal whose size is re-read on SIGWINCH; -1: none
};

struct SessionOptions {
  // attach: this byte on stdin ends the session on purpose (0x1d = Ctrl-]).
  std::optional<uint8_t> detach_key;
  // A second SIGINT within this time of the previous one abandons the session.
  std::chrono::milliseconds interrupt_window{1000};
};

struct SessionResult {
  enum class Kind {
    kExited,       // the command ended; exit_status = protocol::shell_status
    kAgentError,   // the agent replied ErrorMsg; 127 for ENOENT, else 126
    kDetached,     // the detach key was typed; 0
    kInterrupted,  // SIGINT twice within the window; 130
    kFailed,       // connection lost, protocol error, local I/O error; 255
  };
  Kind kind = Kind::kFailed;
  int exit_status = 255;
  std::string message;  // for the user (kAgentError, kInterrupted, kFailed)
};

// Runs one exec on conn, a connected stream to the agent (made non-blocking
// here). Output is fully written before it returns, except when detached or
// interrupted. Stops reading the connection while more than ~1 MiB of output
// waits for a slow consumer, so memory stays bounded. Our stdout or stderr
// failing with EPIPE forwards SIGPIPE to the remote command (once) and drops
// further output for that fd. Throws Error only for local setup failures;
// everything the agent or the connection does ends in a SessionResult.
SessionResult run_exec_session(int conn, const protocol::ExecRequest& request, const SessionIo& io,
                               const SessionOptions& options = {});

}  // namespace ksbox::cli
