#include "devices/fs/io_uring_engine.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "devices/fs/iov_batch.h"
#include "vmm/error.h"

namespace ksbox::devices::fs {
namespace {

// One request in flight at a time: a tiny ring is enough.
constexpr unsigned kRingEntries = 4;
// io_uring_enter's -EAGAIN/-EBUSY (request allocation, CQ backlog) pass.
constexpr int kBusyAttempts = 64;

bool transient(int err) { return err == -EINTR || err == -EAGAIN || err == -EBUSY; }

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

[[noreturn]] void throw_setup_error(int err) {
  throw Error(fmt::format("cannot use io_uring for virtio-fs I/O: {}: {}; or choose the \"sync\" (or \"auto\") "
                          "fs I/O engine",
                          std::strerror(err), setup_hint(err)));
}

// Submits the prepared SQE and waits for its completion. Returns 0 once the
// kernel has taken it, or -errno with the SQE still unconsumed in the ring.
int submit(io_uring& ring) {
  int busy = 0;
  for (;;) {
    const int r = io_uring_submit_and_wait(&ring, 1);
    if (r >= 0 && io_uring_sq_ready(&ring) == 0) return 0;
    if (r < 0 && !transient(r)) return r;
    if (r != -EINTR && ++busy >= kBusyAttempts) return r < 0 ? r : -EAGAIN;
  }
}

// The result of the one request in flight.
int reap(io_uring& ring) {
  io_uring_cqe* cqe = nullptr;
  int r;
  while ((r = io_uring_wait_cqe(&ring, &cqe)) < 0) {
    if (transient(r)) continue;
    // Returning would leave the kernel writing into buffers the caller is
    // about to free or reuse.
    fmt::print(stderr, "ksbox: io_uring wait failed with a request in flight: {}\n", std::strerror(-r));
    std::abort();
  }
  const int res = cqe->res;
  io_uring_cqe_seen(&ring, cqe);
  return res;
}

}  // namespace

IoUringEngine::IoUringEngine() {
  // The ring fd is always close-on-exec (the kernel sets O_CLOEXEC).
  if (const int r = io_uring_queue_init(kRingEntries, &ring_, 0); r < 0) throw_setup_error(-r);
  ring_usable_ = true;
  // A NOP round trip: seccomp may allow io_uring_setup yet refuse io_uring_enter.
  io_uring_prep_nop(io_uring_get_sqe(&ring_));
  if (const int r = submit(ring_); r < 0) {
    drop_ring();
    throw_setup_error(-r);
  }
  reap(ring_);
}

IoUringEngine::~IoUringEngine() { drop_ring(); }

void IoUringEngine::drop_ring() {
  if (!ring_usable_) return;
  io_uring_queue_exit(&ring_);  // discards an SQE the kernel never took
  ring_usable_ = false;
}

ssize_t IoUringEngine::transfer(bool write, int fd, const iovec* iov, int count, off_t off) {
  const auto blocking = [&] { return write ? pwritev_errno(fd, iov, count, off) : preadv_errno(fd, iov, count, off); };
  if (off < 0) return -EINVAL;  // to io_uring, -1 would mean "at the file position"
  if (!ring_usable_) return blocking();
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) {  // cannot happen with nothing in flight; stay correct anyway
    drop_ring();
    return blocking();
  }
  const auto n = static_cast<unsigned>(count);
  const auto pos = static_cast<uint64_t>(off);
  if (write)
    io_uring_prep_writev(sqe, fd, iov, n, pos);
  else
    io_uring_prep_readv(sqe, fd, iov, n, pos);
  if (const int r = submit(ring_); r < 0) {
    fmt::print(stderr, "ksbox: virtio-fs io_uring submission failed ({}); using blocking I/O\n", std::strerror(-r));
    drop_ring();
    return blocking();
  }
  const int res = reap(ring_);
  // O_NONBLOCK files on filesystems without async support give -EAGAIN
  // instead of blocking; the sync engine would block, so do that.
  if (res == -EAGAIN) return blocking();
  return res;
}

ssize_t IoUringEngine::read(int fd, uint64_t offset, std::span<const std::span<uint8_t>> dst) {
  return transfer_batched(dst, offset, [&](const iovec* v, int n, off_t off) { return transfer(false, fd, v, n, off); });
}

ssize_t IoUringEngine::write(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> src) {
  return transfer_batched(src, offset, [&](const iovec* v, int n, off_t off) { return transfer(true, fd, v, n, off); });
}

}  // namespace ksbox::devices::fs
