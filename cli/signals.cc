#include "cli/signals.h"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/error.h"

namespace ksbox::cli {

SignalFd::SignalFd(std::initializer_list<int> signals, bool restore_mask) : restore_mask_(restore_mask) {
  sigemptyset(&set_);
  for (const int s : signals) sigaddset(&set_, s);
  if (const int e = ::pthread_sigmask(SIG_BLOCK, &set_, &old_mask_); e != 0) {
    errno = e;
    throw_errno("pthread_sigmask");
  }
  fd_ = UniqueFd(::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd_) {
    const int err = errno;
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    errno = err;
    throw_errno("signalfd");
  }
}

SignalFd::~SignalFd() {
  if (restore_mask_) ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

void SignalFd::add(int signo) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  if (const int e = ::pthread_sigmask(SIG_BLOCK, &one, nullptr); e != 0) {
    errno = e;
    throw_errno("pthread_sigmask");
  }
  sigaddset(&set_, signo);
  if (::signalfd(fd_.get(), &set_, 0) < 0) throw_errno("signalfd");
}

std::optional<int> SignalFd::read_one() {
  signalfd_siginfo si{};
  for (;;) {
    const ssize_t n = ::read(fd_.get(), &si, sizeof(si));
    if (n == static_cast<ssize_t>(sizeof(si))) return static_cast<int>(si.ssi_signo);
    if (n < 0 && errno == EINTR) continue;
    return std::nullopt;  // EAGAIN: nothing pending
  }
}

void SignalFd::discard_pending() {
  while (read_one()) {
  }
}

void ignore_sigpipe() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGPIPE, &sa, nullptr) != 0) throw_errno("sigaction(SIGPIPE)");
}

}  // namespace ksbox::cli
