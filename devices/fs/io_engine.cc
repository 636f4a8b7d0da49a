#include "devices/fs/io_engine.h"

#include "devices/fs/iov_batch.h"

namespace ksbox::devices::fs {

ssize_t SyncIoEngine::read(int fd, uint64_t offset, std::span<const std::span<uint8_t>> dst) {
  return transfer_batched(dst, offset, [fd](const iovec* v, int n, off_t off) { return preadv_errno(fd, v, n, off); });
}

ssize_t SyncIoEngine::write(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> src) {
  return transfer_batched(src, offset, [fd](const iovec* v, int n, off_t off) { return pwritev_errno(fd, v, n, off); });
}

}  // namespace ksbox::devices::fs
