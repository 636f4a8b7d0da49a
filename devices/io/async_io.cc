#include "devices/io/async_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "devices/io/uring_async_io.h"
#include "vmm/error.h"

namespace ksbox::devices::io {
namespace {

int64_t errno_or(int64_t r) { return r < 0 ? -errno : r; }

// Moves all of `op.iov`, continuing short transfers; 0 bytes moved is -EIO
// (the image ended under us, or the disk is full without saying so).
int64_t transfer_all(const IoOp& op) {
  if (op.offset > static_cast<uint64_t>(INT64_MAX)) return -EINVAL;
  const uint64_t total = iov_bytes(op.iov);
  uint64_t done = 0;
  while (done < total) {
    const auto rest = iov_tail(op.iov, done);
    const int n = static_cast<int>(std::min<size_t>(rest.size(), IOV_MAX));
    const auto off = static_cast<off_t>(op.offset + done);
    const int64_t r = op.kind == IoOp::Kind::kRead
                          ? errno_or(::preadv(op.fd, rest.data(), n, off))
                          : errno_or(::pwritev2(op.fd, rest.data(), n, off, op.dsync ? RWF_DSYNC : 0));
    if (r == -EINTR || r == -EAGAIN) continue;
    if (r < 0) return r;
    if (r == 0) return -EIO;
    done += static_cast<uint64_t>(r);
  }
  return static_cast<int64_t>(total);
}

}  // namespace

uint64_t iov_bytes(std::span<const iovec> iov) {
  uint64_t n = 0;
  for (const auto& v : iov) n += v.iov_len;
  return n;
}

std::vector<iovec> iov_tail(std::span<const iovec> iov, uint64_t skip) {
  std::vector<iovec> out;
  for (const auto& v : iov) {
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    out.push_back({static_cast<uint8_t*>(v.iov_base) + skip, v.iov_len - skip});
    skip = 0;
  }
  return out;
}

int64_t run_blocking(const IoOp& op) {
  switch (op.kind) {
    case IoOp::Kind::kRead:
    case IoOp::Kind::kWrite:
      return transfer_all(op);
    case IoOp::Kind::kDataSync:
      return errno_or(::fdatasync(op.fd));
    case IoOp::Kind::kFallocate:
      if (op.offset > static_cast<uint64_t>(INT64_MAX) || op.length > static_cast<uint64_t>(INT64_MAX))
        return -EINVAL;
      return errno_or(
          ::fallocate(op.fd, op.mode, static_cast<off_t>(op.offset), static_cast<off_t>(op.length)));
  }
  return -EINVAL;
}

bool SyncAsyncIo::submit(const IoOp& op) {
  if (done_.size() >= capacity_) return false;
  done_.push_back({op.tag, run_blocking(op)});
  return true;
}

void SyncAsyncIo::reap(std::vector<IoCompletion>& out) {
  out.insert(out.end(), done_.begin(), done_.end());
  done_.clear();
}

std::unique_ptr<AsyncIo> make_async_io(IoEngineKind kind, unsigned capacity, std::string_view purpose,
                                       std::string* why_fallback) {
  if (why_fallback) why_fallback->clear();
  if (kind == IoEngineKind::kSync) return std::make_unique<SyncAsyncIo>(capacity);
  if (kind == IoEngineKind::kIoUring) return std::make_unique<UringAsyncIo>(capacity, purpose);
  try {
    return std::make_unique<UringAsyncIo>(capacity, purpose);
  } catch (const Error& e) {
    if (why_fallback) *why_fallback = e.what();
    return std::make_unique<SyncAsyncIo>(capacity);
  }
}

}  // namespace ksbox::devices::io
