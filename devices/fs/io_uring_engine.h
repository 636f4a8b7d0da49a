// IoEngine over io_uring (liburing). Each IOV_MAX batch of the scatter list
// that goes through the ring is one IORING_OP_READV/WRITEV, submitted and
// reaped before the call returns, so no request outlives the caller's
// buffers. Byte counts and errors match SyncIoEngine (the same
// transfer_batched loop). Not thread-safe: one caller at a time, like
// Passthrough.
//
// Which batches go through the ring is measured, not assumed. One request is
// in flight at a time, so the ring can only win where the kernel completes
// it more cheaply than a syscall would; where it cannot complete a request
// inline it hands it to an io-wq worker thread, and that hand-off is dearer
// than a small copy. Measured in the nested L1 (Linux 6.1, tmpfs):
//  - writes: buffered writes to a file without FMODE_BUF_WASYNC (tmpfs,
//    and most filesystems before 6.x) always go to io-wq: 4-8 ms a request
//    through the ring, 4 KiB or 1 MiB alike, against 0.01-2.5 ms inline. So
//    writes are done inline (kRingMinWrite);
//  - reads: from 128 KiB up, the ring and preadv cost the same (1 MiB:
//    ~0.6 ms each); a guest's 4 KiB READ took 2.1 ms through the ring and
//    0.13 ms inline. So only reads of at least kRingMinRead use the ring.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "devices/fs/io_engine.h"
#include "devices/io/uring.h"

namespace ksbox::devices::fs {

class IoUringEngine final : public IoEngine {
 public:
  static constexpr size_t kRingMinRead = 128 << 10;
  static constexpr size_t kRingMinWrite = SIZE_MAX;  // never
  // The smallest read and write batches that go through the ring (0: every
  // one; tests use that); smaller ones are a blocking preadv/pwritev.
  // Throws ksbox::Error saying why and what to do if the kernel refuses a
  // ring (no io_uring, kernel.io_uring_disabled, seccomp, RLIMIT_MEMLOCK).
  explicit IoUringEngine(size_t ring_min_read = kRingMinRead, size_t ring_min_write = kRingMinWrite);
  IoUringEngine(const IoUringEngine&) = delete;
  IoUringEngine& operator=(const IoUringEngine&) = delete;

  ssize_t read(int fd, uint64_t offset, std::span<const std::span<uint8_t>> dst) override;
  ssize_t write(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> src) override;

  // False once the ring failed to take a request; the engine then does
  // blocking preadv/pwritev.
  bool ring_usable() const { return ring_.has_value(); }
  // Batches that went through the ring, and inline.
  uint64_t ring_requests() const { return ring_requests_; }
  uint64_t inline_requests() const { return inline_requests_; }

 private:
  ssize_t transfer(bool write, int fd, const iovec* iov, int count, off_t off);
  std::optional<io::Uring> ring_;
  size_t ring_min_read_, ring_min_write_;
  uint64_t ring_requests_ = 0, inline_requests_ = 0;
};

}  // namespace ksbox::devices::fs
