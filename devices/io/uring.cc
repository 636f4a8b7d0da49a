#include "devices/io/uring.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "vmm/error.h"

namespace ksbox::devices::io {
namespace {

// io_uring_enter's -EAGAIN/-EBUSY (request allocation, CQ backlog) pass.
constexpr int kBusyAttempts = 64;

std::string setup_hint(int err) {
  switch (err) {
    case ENOSYS:
      return "this kernel has no io_uring (Linux 5.1+ built with CONFIG_IO_URING is needed)";
    case ENOMEM:
      return "not enough locked memory for the ring (raise RLIMIT_MEMLOCK, `ulimit -l`)";
    case EPERM:
    case EACCES: {
      std::string disabled;
      std::ifstream("/proc/sys/kernel/io_uring_disabled") >> disabled;
      if (disabled == "2") return "io_uring is disabled by sysctl kernel.io_uring_disabled=2 (set it to 0)";
      if (disabled == "1")
        return "sysctl kernel.io_uring_disabled=1 allows io_uring only to CAP_SYS_ADMIN and the "
               "kernel.io_uring_group group (set it to 0, or run ksbox-vmm in that group)";
      return "a seccomp filter (e.g. a container runtime's default profile) blocks io_uring; allow "
             "io_uring_setup and io_uring_enter";
    }
    default:
      return "the kernel refused an io_uring ring";
  }
}

[[noreturn]] void throw_setup_error(std::string_view purpose, int err) {
  throw Error(fmt::format("cannot use io_uring for {}: {}: {}; or choose the \"sync\" (or \"auto\") I/O engine",
                          purpose, std::strerror(err), setup_hint(err)));
}

}  // namespace

Uring::Uring(unsigned entries, std::string_view purpose) {
  // The ring fd is always close-on-exec (the kernel sets O_CLOEXEC).
  if (const int r = io_uring_queue_init(entries, &ring_, 0); r < 0) throw_setup_error(purpose, -r);
  io_uring_prep_nop(io_uring_get_sqe(&ring_));
  if (const int r = submit(1); r < 0) {
    io_uring_queue_exit(&ring_);
    throw_setup_error(purpose, -r);
  }
  io_uring_cqe* cqe = nullptr;
  while (io_uring_wait_cqe(&ring_, &cqe) == -EINTR) {
  }
  if (cqe) io_uring_cqe_seen(&ring_, cqe);
}

Uring::~Uring() { io_uring_queue_exit(&ring_); }

int Uring::submit(unsigned wait_nr) {
  int busy = 0;
  for (;;) {
    const int r = wait_nr ? io_uring_submit_and_wait(&ring_, wait_nr) : io_uring_submit(&ring_);
    if (r >= 0 && io_uring_sq_ready(&ring_) == 0) return 0;
    if (r < 0 && !transient_uring_error(r)) return r;
    if (r != -EINTR && ++busy >= kBusyAttempts) return r < 0 ? r : -EAGAIN;
  }
}

}  // namespace ksbox::devices::io
