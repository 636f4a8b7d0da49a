#include "devices/vsock/connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ksbox::devices::vsock {
namespace {

constexpr size_t kMaxIovecs = 64;

// sendmsg without SIGPIPE: a host peer that went away is an error, not a signal.
ssize_t send_iov(int fd, const iovec* iov, size_t n) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = n;
  for (;;) {
    const ssize_t r = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -errno;
  }
}

}  // namespace

// --- HostBuffer ---------------------------------------------------------------

void HostBuffer::append(std::span<const uint8_t> data) {
  size_ += data.size();
  count(data.size(), 0);
  while (!data.empty()) {
    if (chunks_.empty() || chunks_.back().size() == kChunk) {
      chunks_.emplace_back();
      chunks_.back().reserve(kChunk);
    }
    auto& c = chunks_.back();
    const size_t n = std::min(data.size(), kChunk - c.size());
    c.insert(c.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(n));
    data = data.subspan(n);
  }
}

ssize_t HostBuffer::flush(int fd) {
  size_t total = 0;
  while (size_ > 0) {
    iovec iov[kMaxIovecs];
    size_t n = 0;
    for (size_t i = 0; i < chunks_.size() && n < kMaxIovecs; ++i, ++n) {
      const size_t off = i == 0 ? head_ : 0;
      iov[n] = {chunks_[i].data() + off, chunks_[i].size() - off};
    }
    const ssize_t w = send_iov(fd, iov, n);
    if (w < 0) return w;
    if (w == 0) break;
    total += static_cast<size_t>(w);
    size_ -= static_cast<size_t>(w);
    count(0, static_cast<size_t>(w));
    size_t left = static_cast<size_t>(w);
    while (left > 0) {
      const size_t avail = chunks_.front().size() - head_;
      if (left < avail) {
        head_ += left;
        break;
      }
      left -= avail;
      chunks_.pop_front();
      head_ = 0;
    }
  }
  return static_cast<ssize_t>(total);
}

void HostBuffer::clear() {
  count(0, size_);
  chunks_.clear();
  head_ = size_ = 0;
}

// --- Connection ---------------------------------------------------------------

Connection::Connection(ConnKey key, uint64_t id, UniqueFd fd, State state, bool host_initiated,
                       size_t* buffered_total)
    : key_(key),
      id_(id),
      fd_(std::move(fd)),
      state_(state),
      host_initiated_(host_initiated),
      buffer_(buffered_total) {}

void Connection::close_host() {
  fd_.reset();
  buffer_.clear();
  state_ = State::kClosed;
  pending = kPendRst;
  epoll_events = 0;  // closing the fd removed it from the epoll set
  blocked_on_buffers = blocked_on_credit = false;
  deadline.reset();
}

void Connection::update_peer_credit(uint32_t buf_alloc, uint32_t fwd_cnt) {
  peer_buf_alloc_ = buf_alloc;
  peer_fwd_cnt_ = fwd_cnt;
}

uint32_t Connection::peer_credit() const {
  const uint32_t in_flight = tx_cnt_ - peer_fwd_cnt_;
  // A guest claiming to have consumed more than we sent gets no credit, not a wrap.
  return in_flight > peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
}

bool Connection::would_overrun(uint32_t len) const {
  return uint64_t{static_cast<uint32_t>(rx_cnt_ - fwd_cnt_)} + len > kBufAlloc;
}

bool Connection::send_to_host(const GuestMemory& mem, std::span<const virtio::Segment> payload, uint32_t len) {
  if (!fd_) return false;
  rx_cnt_ += len;
  // Straight from guest memory to the socket when nothing is queued before it.
  size_t skip = 0;
  if (buffer_.empty()) {
    iovec iov[kMaxIovecs];
    size_t n = 0;
    for (const auto& s : payload) {
      if (n == kMaxIovecs) break;
      auto host = mem.slice(s.addr, s.len);
      if (!host) return false;
      iov[n++] = {host->data(), host->size()};
    }
    const ssize_t w = send_iov(fd_.get(), iov, n);
    if (w < 0) return false;
    skip = static_cast<size_t>(w);
    fwd_cnt_ += static_cast<uint32_t>(w);
  }
  // The rest is copied: the guest reuses its buffer as soon as we complete it.
  for (const auto& s : payload) {
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    auto host = mem.slice(s.addr, s.len);
    if (!host) return false;
    buffer_.append(host->subspan(skip));
    skip = 0;
  }
  return true;
}

bool Connection::flush_to_host() {
  if (!fd_) return false;
  const ssize_t w = buffer_.flush(fd_.get());
  if (w < 0) return false;
  fwd_cnt_ += static_cast<uint32_t>(w);
  return true;
}

void Connection::shut_host_write() {
  if (host_shut_wr_ || !fd_) return;
  host_shut_wr_ = true;
  ::shutdown(fd_.get(), SHUT_WR);
}

void Connection::shut_host_read() {
  if (host_shut_rd_ || !fd_) return;
  host_shut_rd_ = true;
  ::shutdown(fd_.get(), SHUT_RD);
}

Connection::ReadResult Connection::read_from_host(std::span<const iovec> iov) {
  if (!fd_) return {ReadStatus::kError};
  for (;;) {
    const ssize_t r = ::readv(fd_.get(), iov.data(), static_cast<int>(iov.size()));
    if (r > 0) {
      tx_cnt_ += static_cast<uint32_t>(r);
      return {ReadStatus::kData, static_cast<uint32_t>(r)};
    }
    if (r == 0) return {ReadStatus::kEof};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {ReadStatus::kWouldBlock};
    return {ReadStatus::kError};
  }
}

}  // namespace ksbox::devices::vsock
