// The transfer loop shared by the I/O engines, so every engine reports the
// same byte counts and errors for the same file.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <boost/container/small_vector.hpp>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <span>

namespace ksbox::devices::fs {

// Moves `bufs` (in order) at `offset` by calling `op(iov, count, off)`, which
// returns bytes moved or -errno, at most IOV_MAX vectors at a time (the limit
// of preadv/pwritev and of IORING_OP_READV/WRITEV). Retries -EINTR; stops at a
// short transfer (EOF, disk full) so the byte count stays contiguous. Returns
// bytes moved, or -errno when nothing was.
template <typename Span, typename Op>
ssize_t transfer_batched(std::span<const Span> bufs, uint64_t offset, Op op) {
  if (offset > static_cast<uint64_t>(INT64_MAX)) return -EINVAL;
  boost::container::small_vector<iovec, 8> iov;  // no allocation for a typical request
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
    } while (n == -EINTR);
    if (n < 0) return total ? total : n;
    total += n;
    if (static_cast<size_t>(n) < want) break;
  }
  return total;
}

// preadv/pwritev returning bytes or -errno, the convention of transfer_batched.
// One buffer (a page of a READ) goes by pread/pwrite, which spare the
// kernel importing an iovec array.
inline ssize_t preadv_errno(int fd, const iovec* iov, int count, off_t off) {
  const ssize_t r = count == 1 ? ::pread(fd, iov->iov_base, iov->iov_len, off) : ::preadv(fd, iov, count, off);
  return r < 0 ? -errno : r;
}
inline ssize_t pwritev_errno(int fd, const iovec* iov, int count, off_t off) {
  const ssize_t r = count == 1 ? ::pwrite(fd, iov->iov_base, iov->iov_len, off) : ::pwritev(fd, iov, count, off);
  return r < 0 ? -errno : r;
}

}  // namespace ksbox::devices::fs
