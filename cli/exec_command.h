// `ksbox exec` and `ksbox attach` after option parsing: sets up signals,
// stdin, the terminal and the connection around one exec session, prints
// what the user needs to know, and returns the exit status.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "cli/vsock_connect.h"
#include "protocol/exec_protocol.h"

namespace ksbox::cli {

struct ExecCommand {
  VsockAddress address;
  std::chrono::milliseconds connect_timeout{30'000};
  // argv, env, cwd, uid, gid filled in; flags, rows and cols are set here.
  protocol::ExecRequest request;
  bool tty = false;                   // PTY mode (raw local terminal when stdin is one)
  std::optional<uint8_t> detach_key;  // attach only
};

// Runs the command in the guest with our stdin/stdout/stderr and returns
// what ksbox should exit with (see exit_codes.h). Messages go to stderr as
// "ksbox: ...". The terminal, if put in raw mode, is restored on every path
// out of here, exceptions included. Forwarded signals stay blocked after
// return (so one arriving late cannot kill us before we exit).
int run_exec_command(ExecCommand cmd);

}  // namespace ksbox::cli
