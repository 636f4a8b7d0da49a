// IoEngine over io_uring (liburing). Each IOV_MAX batch of the scatter list is
// one IORING_OP_READV/WRITEV, submitted and reaped before the call returns, so
// no request outlives the caller's buffers. Byte counts and errors match
// SyncIoEngine (the same transfer_batched loop). Not thread-safe: one caller
// at a time, like Passthrough.
#pragma once

#include <sys/uio.h>

#include <optional>

#include "devices/fs/io_engine.h"
#include "devices/io/uring.h"

namespace ksbox::devices::fs {

class IoUringEngine final : public IoEngine {
 public:
  // Throws ksbox::Error saying why and what to do if the kernel refuses a
  // ring (no io_uring, kernel.io_uring_disabled, seccomp, RLIMIT_MEMLOCK).
  IoUringEngine();
  IoUringEngine(const IoUringEngine&) = delete;
  IoUringEngine& operator=(const IoUringEngine&) = delete;

  ssize_t read(int fd, uint64_t offset, std::span<const std::span<uint8_t>> dst) override;
  ssize_t write(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> src) override;

  // False once the ring failed to take a request; the engine then does
  // blocking preadv/pwritev.
  bool ring_usable() const { return ring_.has_value(); }

 private:
  ssize_t transfer(bool write, int fd, const iovec* iov, int count, off_t off);
  std::optional<io::Uring> ring_;
};

}  // namespace ksbox::devices::fs
