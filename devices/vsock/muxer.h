// The vsock device's engine: the connection table keyed by (host port, guest
// port), the host Unix listener and the device thread's epoll loop (host
// sockets, the 2 s timeouts on a timerfd, a stop eventfd), and the guest's
// packets in both directions.
//
// Threads: the device thread runs the epoll loop; process_queue() comes from
// the queue notifier (or a vCPU). Both work under one mutex, so host sockets
// and virtqueues are only touched by one thread at a time.
//
// Memory and work stay bounded whatever the guest does: at most
// max_connections streams (each buffering at most Connection::kBufAlloc
// bytes, and all together at most about max_buffered_to_host: beyond that
// the device stops consuming TX until host sockets take some), at most
// max_rst_backlog RSTs waiting for RX buffers (beyond that the device stops
// consuming TX until the guest posts RX buffers), and at most
// max_pending_clients host clients that have not sent their CONNECT line.
// A stream the guest shut for sending whose host does not take the rest
// within linger_timeout is reset, and so is, when TX has stopped at
// max_buffered_to_host for linger_timeout, every stream whose host took
// nothing in that time. Out of file descriptors, the listener
// rests for a moment instead of spinning on the client it cannot accept.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "devices/virtio/device.h"
#include "devices/vsock/connection.h"
#include "devices/vsock/guest_queues.h"
#include "devices/vsock/host_socket.h"
#include "devices/vsock/packet.h"

namespace ksbox::devices::vsock {

struct MuxerLimits {
  size_t max_connections = 1024;
  size_t max_pending_clients = 64;  // accepted, CONNECT line not complete yet
  size_t max_rst_backlog = 256;     // RSTs for unknown streams waiting for RX buffers
  std::chrono::milliseconds connect_timeout{2000};  // CONNECT line, and the guest's answer
  // After the guest's SHUTDOWN(SEND), how long the host may take no bytes
  // of what is still buffered for it (each byte it takes restarts this).
  std::chrono::milliseconds linger_timeout{10000};
  size_t max_buffered_to_host = 32u << 20;  // bytes, all streams together
};

// `l` shrunk so that its sockets (streams, pending clients, and headroom
// for the rest of the process) fit in `fd_limit` descriptors.
inline constexpr size_t kFdHeadroom = 64;
MuxerLimits fit_to_fd_limit(MuxerLimits l, uint64_t fd_limit);

struct VsockStats {
  std::array<uint64_t, kRefusalCount> refused{};  // per Refusal
  uint64_t host_connects_ok = 0;      // "OK <port>" sent
  uint64_t host_connects_failed = 0;  // host client closed without "OK": bad line, timeout, RST, inactive, limit
  uint64_t guest_connects_ok = 0;     // guest REQUEST answered with RESPONSE
  uint64_t guest_connects_failed = 0; // guest REQUEST answered with RST (nobody at <path>_<port>)
  uint64_t bytes_to_host = 0;         // payload taken from the guest
  uint64_t bytes_to_guest = 0;        // payload read from host sockets into the guest
  uint64_t rst_sent = 0;
  uint64_t credit_updates_sent = 0;
  uint64_t tx_stalls = 0;             // times TX stopped for lack of RX buffers
  uint64_t tx_buffer_stalls = 0;      // times TX stopped at max_buffered_to_host
  uint64_t accept_pauses = 0;         // times accept failed (no fds, no memory) and the listener rested
  uint64_t linger_resets = 0;         // streams reset because the host did not take their last bytes
  size_t connections = 0;             // live table entries
  size_t bytes_buffered_to_host = 0;  // guest → host bytes the host sockets have not taken yet
  uint64_t refusals(Refusal r) const { return refused[static_cast<size_t>(r)]; }
};

class Muxer {
 public:
  // Binds the listener at `path` (see UnixListener) and starts the thread.
  Muxer(std::string path, uint64_t guest_cid, MuxerLimits limits);
  ~Muxer();  // stops and joins the thread, closes every socket
  Muxer(const Muxer&) = delete;
  Muxer& operator=(const Muxer&) = delete;

  // The driver is up: start serving the queues in `ctx` (3 queues).
  void activate(const virtio::ActivateContext& ctx);
  // Driver reset: closes every stream (the listener stays) and stops using
  // the queues and guest memory before returning.
  void reset();
  void process_queue(uint16_t index);

  VsockStats stats() const;
  const std::string& path() const { return listener_.path(); }
  const MuxerLimits& limits() const { return limits_; }  // after fit_to_fd_limit

 private:
  struct PendingClient {
    UniqueFd fd;
    std::string line;
    Clock::time_point deadline;
  };

  void loop();
  void handle_event(uint64_t token, uint32_t events);

  // --- Host side (muxer.cc).
  void on_listener();
  void on_client(uint64_t id);
  void start_host_connect(UniqueFd fd, uint32_t guest_port);
  void on_host_readable(Connection& c);
  void on_host_writable(Connection& c);
  void on_timer();
  void pause_listener();
  void resume_listener();
  // Starts, restarts or ends a stream's linger time (see MuxerLimits).
  void update_linger(Connection& c, bool progress = false);
  void arm_timer(Clock::time_point deadline);
  void self_kick();
  uint32_t allocate_host_port(uint32_t guest_port);
  void update_interest(Connection& c);
  bool watch(int fd, uint64_t token);  // EPOLLIN

  // --- Guest side (muxer_guest.cc).
  void process_tx();
  void handle_packet(const TxPacket& p);
  void on_guest_request(const ConnKey& key, const Header& h);
  void on_guest_response(Connection& c);
  void on_guest_shutdown(Connection& c, uint32_t flags);
  void on_guest_rw(Connection& c, const TxPacket& p);
  void pump_rx();
  enum class Flush : uint8_t { kDone, kNoBuffers, kFreed };
  Flush flush_control(Connection& c);
  Header header_for(Connection& c, uint16_t op, uint32_t flags = 0);
  void queue_control(Connection& c, uint8_t pending);
  void queue_rst_reply(const Header& to);
  // Ends a stream: host socket closed, RST to the guest (or nothing, if the
  // guest never heard of it). `c` may be freed.
  void kill(Connection& c);
  // Both directions are shut and flushed: end the stream. `c` may be freed.
  void finish_if_done(Connection& c);
  void free_connection(const ConnKey& key);
  Connection* find(const ConnKey& key);
  void refuse(Refusal r) { refused_[static_cast<size_t>(r)].inc(); }
  bool active() const { return guest_ && !guest_->broken(); }

  const uint64_t guest_cid_;
  const MuxerLimits limits_;
  UnixListener listener_;
  UniqueFd epoll_fd_, stop_fd_, timer_fd_, kick_fd_;

  mutable std::mutex mu_;  // everything below
  std::optional<GuestQueues> guest_;  // while the driver is up
  size_t buffered_to_host_ = 0;  // kept by the streams' HostBuffers: declared before them
  std::unordered_map<ConnKey, std::unique_ptr<Connection>, ConnKeyHash> conns_;
  std::unordered_map<uint64_t, ConnKey> conn_ids_;  // epoll token → stream
  std::unordered_map<uint64_t, PendingClient> clients_;
  std::deque<Header> rst_backlog_;   // RSTs for streams we do not track
  std::deque<ConnKey> ctl_queue_;    // streams with pending control packets
  std::deque<ConnKey> rx_waiters_;   // streams with host data waiting for RX buffers
  uint64_t next_id_;
  uint32_t next_host_port_ = 1u << 30;
  std::optional<Clock::time_point> timer_armed_;
  bool tx_stalled_ = false;
  bool tx_buffer_full_ = false;  // TX stopped at max_buffered_to_host
  // Since when: stalled for linger_timeout, streams whose hosts took nothing
  // meanwhile are reset, or the guest could not even close them.
  std::optional<Clock::time_point> tx_full_since_;
  std::optional<Clock::time_point> listener_paused_until_;
  std::vector<iovec> iov_;  // scratch for host → guest reads

  // Metrics: written under the lock, read by stats() without it.
  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
  static uint64_t get(const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); }
  RefusalCounters refused_{};
  std::atomic<uint64_t> host_ok_{0}, host_failed_{0}, guest_ok_{0}, guest_failed_{0}, bytes_to_host_{0},
      bytes_to_guest_{0}, rst_sent_{0}, credit_updates_{0}, tx_stalls_{0}, tx_buffer_stalls_{0}, accept_pauses_{0},
      linger_resets_{0};

  std::thread thread_;  // last: started once everything above exists
};

}  // namespace ksbox::devices::vsock
