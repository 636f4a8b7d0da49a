// Starting one exec'd child: fork, then in the child setsid, stdio (pipes or
// the slave of a new PTY as controlling terminal), ids, cwd and execvpe. A
// failure in the child before exec is reported through a CLOEXEC status
// pipe: EOF on it means exec succeeded, an ExecReport means it did not.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "exec_env.h"
#include "vmm/unique_fd.h"

namespace ksbox::agent {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in the child's PATH
  std::vector<std::string> env;   // the complete environment
  std::vector<std::string> cwds;  // tried in order; the first that works
  ExecIdentity identity;
  bool pty = false;
  bool stdin_closed = false;  // stdin at EOF from the start (pipe mode)
  uint16_t rows = 0;          // PTY size; 0 = 24x80
  uint16_t cols = 0;
};

// The parent's side of a started child. Data fds are non-blocking and
// close-on-exec. With a PTY, stdin_fd and stdout_fd are two descriptors of
// the master (so each can have its own epoll registration) and stderr_fd is
// empty.
struct Child {
  pid_t pid = -1;
  UniqueFd status;  // read end of the status pipe
  UniqueFd stdin_fd;
  UniqueFd stdout_fd;
  UniqueFd stderr_fd;
};

struct SpawnError {
  int err = 0;          // errno of the failing call
  std::string message;  // for the user, e.g. "cannot run 'foo': No such file or directory"
};

// Parent-side failures (pipe, PTY, fork) come back as SpawnError; failures
// in the child arrive later on Child::status.
std::expected<Child, SpawnError> spawn(const SpawnSpec& spec);

enum class StatusRead { kExecuted, kFailed, kNotReady };
// Reads the status pipe once it is readable: kExecuted on EOF, kFailed with
// *error filled in on a report (or a broken pipe), kNotReady on EAGAIN.
StatusRead read_exec_status(int status_fd, const SpawnSpec& spec, SpawnError* error);

}  // namespace ksbox::agent
