#include "devices/fs/io_uring_engine.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "devices/fs/iov_batch.h"
#include "devices/io/async_io.h"

namespace ksbox::devices::fs {
namespace {

// One request in flight at a time: a tiny ring is enough.
constexpr unsigned kRingEntries = 4;

// The result of the one request in flight.
int reap(io_uring& ring) {
  io_uring_cqe* cqe = nullptr;
  int r;
  while ((r = io_uring_wait_cqe(&ring, &cqe)) < 0) {
    if (io::transient_uring_error(r)) continue;
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

IoUringEngine::IoUringEngine(size_t ring_min_read, size_t ring_min_write)
    : ring_min_read_(ring_min_read), ring_min_write_(ring_min_write) {
  ring_.emplace(kRingEntries, "virtio-fs I/O");
}

ssize_t IoUringEngine::transfer(bool write, int fd, const iovec* iov, int count, off_t off) {
  const auto blocking = [&] { return write ? pwritev_errno(fd, iov, count, off) : preadv_errno(fd, iov, count, off); };
  if (off < 0) return -EINVAL;  // to io_uring, -1 would mean "at the file position"
  if (!ring_) return blocking();
  const uint64_t bytes = io::iov_bytes({iov, static_cast<size_t>(count)});
  if (bytes < (write ? ring_min_write_ : ring_min_read_)) {
    ++inline_requests_;
    return blocking();
  }
  ++ring_requests_;
  io_uring_sqe* sqe = io_uring_get_sqe(ring_->get());
  if (!sqe) {  // cannot happen with nothing in flight; stay correct anyway
    ring_.reset();
    return blocking();
  }
  const auto n = static_cast<unsigned>(count);
  const auto pos = static_cast<uint64_t>(off);
  if (write)
    io_uring_prep_writev(sqe, fd, iov, n, pos);
  else
    io_uring_prep_readv(sqe, fd, iov, n, pos);
  if (const int r = ring_->submit(1); r < 0) {
    fmt::print(stderr, "ksbox: virtio-fs io_uring submission failed ({}); using blocking I/O\n", std::strerror(-r));
    ring_.reset();  // discards an SQE the kernel never took
    return blocking();
  }
  const int res = reap(*ring_->get());
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
