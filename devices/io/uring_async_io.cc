#include "devices/io/uring_async_io.h"

#include <sys/eventfd.h>

#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "vmm/error.h"

namespace ksbox::devices::io {
namespace {

// A file system that keeps answering -EAGAIN gets the blocking call instead.
constexpr unsigned kMaxRetries = 8;

[[noreturn]] void fatal(const char* what, int err) {
  // Returning would leave the kernel writing into guest memory the device
  // believes idle; there is no safe way on.
  fmt::print(stderr, "ksbox: io_uring {} failed with ops in flight: {}\n", what, std::strerror(err));
  std::abort();
}

}  // namespace

UringAsyncIo::UringAsyncIo(unsigned capacity, std::string_view purpose)
    : ring_(capacity, purpose), event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), slots_(capacity) {
  if (capacity == 0) throw Error("io_uring engine with no capacity");
  if (!event_fd_) throw_errno("eventfd");
  if (const int r = io_uring_register_eventfd(ring_.get(), event_fd_.get()); r < 0)
    throw Error(fmt::format("cannot use io_uring for {}: registering its eventfd: {}", purpose, std::strerror(-r)));
  free_.reserve(capacity);
  for (uint32_t i = capacity; i-- > 0;) free_.push_back(i);
}

UringAsyncIo::~UringAsyncIo() {
  std::vector<IoCompletion> ignored;
  drain(ignored);
}

bool UringAsyncIo::submit(const IoOp& op) {
  if (free_.empty()) return false;
  const uint32_t index = free_.back();
  free_.pop_back();
  Slot& s = slots_[index];
  s.op = op;
  s.iov.assign(op.iov.begin(), op.iov.end());
  s.op.iov = {};
  s.moved = 0;
  s.retries = 0;
  s.busy = true;
  ++in_flight_;
  prepare(index);
  return true;
}

void UringAsyncIo::prepare(uint32_t index) {
  Slot& s = slots_[index];
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (!sqe) {
    // The SQ has as many entries as there are slots, so only unsubmitted
    // resubmissions can fill it: push them out and take the freed entry.
    flush();
    sqe = io_uring_get_sqe(ring_.get());
    if (!sqe) fatal("get_sqe", EBUSY);
  }
  const IoOp& op = s.op;
  switch (op.kind) {
    case IoOp::Kind::kRead:
    case IoOp::Kind::kWrite: {
      // The iovec array stays alive in the slot until the op completes.
      const auto n = static_cast<unsigned>(std::min<size_t>(s.iov.size(), IOV_MAX));
      if (op.kind == IoOp::Kind::kRead) {
        io_uring_prep_readv(sqe, op.fd, s.iov.data(), n, op.offset);
      } else {
        io_uring_prep_writev(sqe, op.fd, s.iov.data(), n, op.offset);
        if (op.dsync) sqe->rw_flags = RWF_DSYNC;
      }
      break;
    }
    case IoOp::Kind::kDataSync:
      io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC);
      break;
    case IoOp::Kind::kFallocate:
      io_uring_prep_fallocate(sqe, op.fd, op.mode, static_cast<off_t>(op.offset), static_cast<off_t>(op.length));
      break;
  }
  io_uring_sqe_set_data64(sqe, index);
  ++unsubmitted_;
}

void UringAsyncIo::flush() {
  if (unsubmitted_ == 0) return;
  if (const int r = ring_.submit(0); r < 0) fatal("submit", -r);
  unsubmitted_ = 0;
}

void UringAsyncIo::ack_event() {
  uint64_t n;
  [[maybe_unused]] auto r = ::read(event_fd_.get(), &n, sizeof n);
}

bool UringAsyncIo::finish(const io_uring_cqe& cqe, IoCompletion& out) {
  const uint64_t index = io_uring_cqe_get_data64(&cqe);
  if (index >= slots_.size() || !slots_[index].busy) fatal("completion", EINVAL);
  Slot& s = slots_[index];
  int64_t res = cqe.res;
  const bool transfer = s.op.kind == IoOp::Kind::kRead || s.op.kind == IoOp::Kind::kWrite;
  if ((res == -EAGAIN || res == -EINTR) && ++s.retries <= kMaxRetries) {
    prepare(static_cast<uint32_t>(index));
    return false;
  }
  if (res == -EAGAIN || res == -EINTR) {
    // Still not done after the retries: finish it with blocking calls.
    IoOp rest = s.op;
    rest.iov = s.iov;
    res = run_blocking(rest);
    if (transfer && res >= 0) res += static_cast<int64_t>(s.moved);
  } else if (transfer && res >= 0) {
    const uint64_t want = iov_bytes(s.iov);
    if (res == 0 && want > 0) {
      res = -EIO;  // no progress: the image ended under us
    } else if (static_cast<uint64_t>(res) < want) {
      // Continue the short transfer (or the next IOV_MAX batch).
      const auto n = static_cast<uint64_t>(res);
      s.iov = iov_tail(s.iov, n);
      s.op.offset += n;
      s.moved += n;
      prepare(static_cast<uint32_t>(index));
      return false;
    } else {
      res += static_cast<int64_t>(s.moved);
    }
  }
  out = {s.op.tag, res};
  s.busy = false;
  s.iov.clear();
  free_.push_back(static_cast<uint32_t>(index));
  --in_flight_;
  return true;
}

void UringAsyncIo::reap(std::vector<IoCompletion>& out) {
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(ring_.get(), &cqe) == 0 && cqe) {
    const io_uring_cqe copy = *cqe;
    io_uring_cqe_seen(ring_.get(), cqe);
    IoCompletion c;
    if (finish(copy, c)) out.push_back(c);
  }
  flush();  // continued transfers
}

void UringAsyncIo::drain(std::vector<IoCompletion>& out) {
  while (in_flight_ > 0) {
    flush();
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_wait_cqe(ring_.get(), &cqe);
    if (r < 0) {
      if (transient_uring_error(r)) continue;
      fatal("wait", -r);
    }
    reap(out);
  }
}

}  // namespace ksbox::devices::io
