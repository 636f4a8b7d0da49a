// Signals as events: blocks a set of signals for the process and delivers
// them through a signalfd, so that the exec loop can forward them instead of
// dying of them.
#pragma once

#include <signal.h>

#include <initializer_list>
#include <optional>

#include "vmm/unique_fd.h"

namespace ksbox::cli {

class SignalFd {
 public:
  // Blocks `signals` in the calling thread (create it before any other
  // thread, so that all threads inherit the mask) and opens a non-blocking
  // signalfd for them. Throws Error.
  explicit SignalFd(std::initializer_list<int> signals, bool restore_mask = true);
  // With restore_mask, restores the previous signal mask: signals still
  // pending are then delivered with their default action. Without, they
  // stay blocked (for a process about to exit with a status of its own).
  ~SignalFd();

  // Adds a signal to the set. Throws Error.
  void add(int signo);
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;

  int fd() const { return fd_.get(); }
  // The next pending signal number, or nullopt if none is pending.
  std::optional<int> read_one();
  // Drops pending instances of the set, e.g. before restoring the mask.
  void discard_pending();

 private:
  sigset_t set_{};
  sigset_t old_mask_{};
  bool restore_mask_;
  UniqueFd fd_;
};

// The default disposition for SIGPIPE is death; ksbox wants EPIPE from
// write() instead, to forward the broken pipe to the remote command.
void ignore_sigpipe();

}  // namespace ksbox::cli
