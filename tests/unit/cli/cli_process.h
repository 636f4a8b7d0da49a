// Runs the real `ksbox` binary as a child process for end-to-end tests,
// feeding its stdin and collecting stdout/stderr, with a timeout after
// which it is killed. The destructor kills and reaps a child still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "vmm/unique_fd.h"

namespace ksbox::cli::testing {

struct CliRun {
  int exit_code = -1;    // when it exited
  int term_signal = 0;   // when a signal killed it
  bool timed_out = false;
  std::string out;
  std::string err;
  // What a shell would show as $?.
  int status() const { return term_signal ? 128 + term_signal : exit_code; }
};

struct SpawnOptions {
  std::vector<std::string> args;                 // after argv[0]
  std::optional<std::vector<std::string>> env;   // default: ours
  int stdin_fd = -1;   // -1: a pipe, written from stdin_data
  int stdout_fd = -1;  // -1: a pipe, collected into CliRun::out
  int stderr_fd = -1;  // -1: a pipe, collected into CliRun::err
  bool new_session_ctty = false;  // setsid() and make stdin the controlling terminal
};

class CliProcess {
 public:
  explicit CliProcess(SpawnOptions opts, std::string stdin_data = {});
  ~CliProcess();
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Our ends of the pipes, -1 when the fd was given in SpawnOptions.
  int stdout_pipe() const { return out_.get(); }
  // Closes our read end of the stdout pipe (the child then gets EPIPE).
  void close_stdout_pipe() { out_.reset(); }
  // Pumps stdin/stdout/stderr until the child exits or the timeout passes
  // (then SIGKILL). Collects only from pipes still open.
  CliRun wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd in_, out_, err_;
  std::string stdin_data_;
  size_t stdin_off_ = 0;
  bool reaped_ = false;
};

// One run with a stdin of stdin_data (closed after it).
CliRun run_cli(std::vector<std::string> args, std::string stdin_data = {},
               std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

}  // namespace ksbox::cli::testing
