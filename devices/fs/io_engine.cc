#include "devices/fs/io_engine.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

namespace ksbox::devices::fs {
namespace {

// preadv/pwritev take at most IOV_MAX vectors: loop in batches, stop at a
// short transfer (EOF, disk full) so the byte count stays contiguous.
template <typename Span, typename Op>
ssize_t transfer(std::span<const Span> bufs, uint64_t offset, Op op) {
  if (offset > static_cast<uint64_t>(INT64_MAX)) return -EINVAL;
  std::vector<iovec> iov;
  iov.reserve(std::min<size_t>(bufs.size(), IOV_MAX));
  ssize_t total = 0;
  size_t i = 0;
  while (i < bufs.size()) {
    iov.clear();
    size_t want = 0;
    for (; i < bufs.size() && iov.size() < IOV_MAX; ++i) {
      iov.push_back({const_cast<uint8_t*>(bufs[i].data()), bufs[i].size()});
      want += bufs[i].size();
    }
    ssize_t n;
    do {
      n = op(iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(offset + static_cast<uint64_t>(total)));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return total ? total : -errno;
    total += n;
    if (static_cast<size_t>(n) < want) break;
  }
  return total;
}

}  // namespace

ssize_t SyncIoEngine::read(int fd, uint64_t offset, std::span<const std::span<uint8_t>> dst) {
  return transfer(dst, offset, [fd](const iovec* v, int n, off_t off) { return ::preadv(fd, v, n, off); });
}

ssize_t SyncIoEngine::write(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> src) {
  return transfer(src, offset, [fd](const iovec* v, int n, off_t off) { return ::pwritev(fd, v, n, off); });
}

}  // namespace ksbox::devices::fs
