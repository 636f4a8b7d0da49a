// One vsock stream between a guest port and a host Unix socket: its state,
// its credit accounting in both directions (virtio 1.2 §5.10.6.3), and the
// bytes the guest sent that the host socket has not taken yet.
//
// Credit, guest → host: we advertise kBufAlloc and count fwd_cnt (bytes
// handed to the host socket); the guest may have at most kBufAlloc bytes in
// flight (rx_cnt - fwd_cnt), which is also the bound on our buffer. A guest
// sending more is refused (RST). Host → guest: the guest advertises its
// buf_alloc/fwd_cnt in every packet; we send at most
// peer_buf_alloc - (tx_cnt - peer_fwd_cnt) bytes. All counters are u32 and
// wrap, as on the wire.
//
// Not thread-safe: the muxer's lock covers it.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/vsock/packet.h"
#include "vmm/guest_memory.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::vsock {

using Clock = std::chrono::steady_clock;

// A stream is named by its two ports; the CIDs are fixed (host 2, the guest's).
struct ConnKey {
  uint32_t host_port = 0;
  uint32_t guest_port = 0;
  bool operator==(const ConnKey&) const = default;
};
struct ConnKeyHash {
  size_t operator()(const ConnKey& k) const {
    return std::hash<uint64_t>{}(uint64_t{k.host_port} << 32 | k.guest_port);
  }
};

// Guest → host bytes waiting for the host socket: chunks, no per-byte work.
// `total`, if given, is a device-wide count of such bytes kept up to date.
class HostBuffer {
 public:
  explicit HostBuffer(size_t* total = nullptr) : total_(total) {}
  ~HostBuffer() { clear(); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void append(std::span<const uint8_t> data);
  // Writes as much as `fd` takes now. Returns the bytes written, or -errno
  // on a socket error (EAGAIN is not an error: 0 bytes).
  ssize_t flush(int fd);
  void clear();

 private:
  static constexpr size_t kChunk = 64 * 1024;
  void count(size_t added, size_t removed) {
    if (total_) *total_ = *total_ + added - removed;
  }
  std::deque<std::vector<uint8_t>> chunks_;
  size_t head_ = 0;  // bytes of chunks_.front() already written
  size_t size_ = 0;
  size_t* total_;
};

class Connection {
 public:
  // Receive buffer we advertise per stream: also the most we ever buffer.
  static constexpr uint32_t kBufAlloc = 256 * 1024;

  enum class State : uint8_t {
    kConnecting,   // host-initiated: REQUEST sent to the guest, no answer yet
    kEstablished,
    kClosed,       // host socket closed; only the RST for the guest is left
  };
  // Control packets waiting for an RX buffer; sent in this bit order.
  enum Pending : uint8_t {
    kPendRequest = 1,
    kPendResponse = 2,
    kPendCreditUpdate = 4,
    kPendShutdown = 8,
    kPendRst = 16,
  };

  // `buffered_total` (optional) counts buffered guest → host bytes over all streams.
  Connection(ConnKey key, uint64_t id, UniqueFd fd, State state, bool host_initiated,
             size_t* buffered_total = nullptr);

  const ConnKey& key() const { return key_; }
  uint64_t id() const { return id_; }  // epoll token
  int fd() const { return fd_.get(); }
  State state() const { return state_; }
  bool host_initiated() const { return host_initiated_; }
  void set_established() { state_ = State::kEstablished; }
  // Closes the host socket and drops buffered bytes; pending control is
  // replaced by one RST. The muxer frees the connection once that is sent.
  void close_host();

  // --- Credit.
  void update_peer_credit(uint32_t buf_alloc, uint32_t fwd_cnt);
  // Bytes we may send the guest now.
  uint32_t peer_credit() const;
  // Whether `len` more bytes from the guest exceed what we advertised.
  bool would_overrun(uint32_t len) const;
  // We freed enough buffer since we last told the guest: it may be waiting.
  bool credit_update_due() const { return fwd_cnt_ - advertised_fwd_cnt_ >= kBufAlloc / 2; }
  // Fills the credit fields of a packet for the guest; credit_advertised()
  // once it is on its way.
  void fill_credit(Header& h) const {
    h.buf_alloc = kBufAlloc;
    h.fwd_cnt = fwd_cnt_;
  }
  void credit_advertised(const Header& sent) { advertised_fwd_cnt_ = sent.fwd_cnt; }
  uint32_t fwd_cnt() const { return fwd_cnt_; }
  uint32_t tx_cnt() const { return tx_cnt_; }

  // --- Guest → host.
  // Writes one RW payload to the host socket, buffering what it does not
  // take. The caller checked would_overrun(). False on a host socket error.
  bool send_to_host(const GuestMemory& mem, std::span<const virtio::Segment> payload, uint32_t len);
  // Writes buffered bytes (EPOLLOUT). False on a host socket error.
  bool flush_to_host();
  bool has_buffered() const { return !buffer_.empty(); }
  size_t buffered() const { return buffer_.size(); }
  // shutdown(SHUT_WR) of the host socket, once.
  void shut_host_write();
  // shutdown(SHUT_RD) of the host socket, once: the host's writes fail
  // with EPIPE instead of blocking on a stream nobody reads.
  void shut_host_read();

  // --- Host → guest.
  enum class ReadStatus : uint8_t { kData, kWouldBlock, kEof, kError };
  struct ReadResult {
    ReadStatus status;
    uint32_t bytes = 0;
  };
  // readv() from the host socket into guest buffers; counts tx_cnt.
  ReadResult read_from_host(std::span<const iovec> iov);
  // Whether bytes should flow from the host socket to the guest at all.
  bool wants_read() const {
    return state_ == State::kEstablished && fd_ && !host_eof && !guest_shut_rcv;
  }

  // --- Shutdown state (virtio-vsock SHUTDOWN flags and host EOF).
  bool guest_shut_send = false;  // guest sends no more: host gets EOF after the buffer
  bool guest_shut_rcv = false;   // guest reads no more: stop reading the host
  bool host_eof = false;         // host sends no more: guest got (or gets) SHUTDOWN(SEND)
  // Both directions are done: the stream ends with an RST once flushed.
  bool both_shut() const { return guest_shut_send && (host_eof || guest_shut_rcv); }

  // --- Muxer bookkeeping.
  uint8_t pending = 0;          // Pending bits
  uint32_t shutdown_flags = 0;  // for kPendShutdown
  bool in_ctl_queue = false;
  bool blocked_on_credit = false;   // guest has no room: EPOLLIN off until it grants credit
  bool blocked_on_buffers = false;  // no RX buffers: EPOLLIN off until the guest adds some
  uint32_t epoll_events = 0;        // what the host fd is registered for (0 = not registered)
  // kConnecting: when to give up waiting for the guest's answer.
  // kEstablished: when to give up on a host that does not take the bytes
  // the guest sent before its SHUTDOWN(SEND) (the linger time).
  std::optional<Clock::time_point> deadline;
  // Last time the host socket took buffered bytes (or the buffer began).
  Clock::time_point host_progress{};

 private:
  const ConnKey key_;
  const uint64_t id_;
  UniqueFd fd_;
  State state_;
  const bool host_initiated_;
  bool host_shut_wr_ = false;
  bool host_shut_rd_ = false;
  // Guest → host.
  uint32_t rx_cnt_ = 0;              // payload bytes received from the guest
  uint32_t fwd_cnt_ = 0;             // of which written to the host socket
  uint32_t advertised_fwd_cnt_ = 0;  // fwd_cnt in the last packet we sent
  HostBuffer buffer_;
  // Host → guest.
  uint32_t tx_cnt_ = 0;  // payload bytes sent to the guest
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;
};

}  // namespace ksbox::devices::vsock
