// File data I/O behind an interface: a synchronous engine now (tests,
// fuzzers, fallback); io_uring later behind the same calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>

namespace ksbox::devices::fs {

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  // Reads into `dst` (in order) from `offset`; bytes read or -errno.
  virtual ssize_t read(int fd, uint64_t offset, std::span<const std::span<uint8_t>> dst) = 0;
  // Writes `src` (in order) at `offset`; bytes written or -errno.
  virtual ssize_t write(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> src) = 0;
};

class SyncIoEngine final : public IoEngine {
 public:
  ssize_t read(int fd, uint64_t offset, std::span<const std::span<uint8_t>> dst) override;
  ssize_t write(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> src) override;
};

}  // namespace ksbox::devices::fs
