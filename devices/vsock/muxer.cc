// The muxer's thread and its host side: the listener, host clients sending
// their CONNECT line, host stream sockets, and timeouts. The guest side
// (virtqueues, packet dispatch) is in muxer_guest.cc.
#include "devices/vsock/muxer.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::devices::vsock {
namespace {

constexpr uint64_t kStopToken = 0, kListenerToken = 1, kTimerToken = 2, kKickToken = 3;
constexpr uint64_t kFirstId = 16;  // tokens of clients and streams
constexpr uint32_t kFirstHostPort = 1u << 30;
constexpr int kMaxAcceptsPerEvent = 64;
constexpr int kMaxEvents = 64;
// How long the listener rests after accept failed for lack of fds or memory.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

void drain(int fd) {
  uint64_t v;
  [[maybe_unused]] auto n = ::read(fd, &v, sizeof v);
}

// The limits, fitted to this process's RLIMIT_NOFILE (said once, on stderr).
MuxerLimits fitted_limits(const MuxerLimits& wanted) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return wanted;
  const MuxerLimits l = fit_to_fd_limit(wanted, rl.rlim_cur);
  static std::atomic<bool> said{false};
  const bool shrunk =
      l.max_connections != wanted.max_connections || l.max_pending_clients != wanted.max_pending_clients;
  if (shrunk && !said.exchange(true))
    fmt::print(stderr,
               "vsock: RLIMIT_NOFILE {} is too low for {} streams and {} pending clients: serving at most {} "
               "and {}\n",
               rl.rlim_cur, wanted.max_connections, wanted.max_pending_clients, l.max_connections,
               l.max_pending_clients);
  return l;
}

}  // namespace

MuxerLimits fit_to_fd_limit(MuxerLimits l, uint64_t fd_limit) {
  const uint64_t wanted = uint64_t{l.max_connections} + l.max_pending_clients + kFdHeadroom;
  if (fd_limit >= wanted && l.max_connections <= fd_limit && l.max_pending_clients <= fd_limit) return l;
  const uint64_t budget = fd_limit > kFdHeadroom ? fd_limit - kFdHeadroom : 0;
  // Pending clients get at most an eighth: streams are what the fds are for.
  const uint64_t pending = std::min<uint64_t>(std::max<uint64_t>(budget / 8, 1), l.max_pending_clients);
  const uint64_t streams = std::max<uint64_t>(budget > pending ? budget - pending : 0, 1);
  l.max_pending_clients = static_cast<size_t>(pending);
  l.max_connections = static_cast<size_t>(std::min<uint64_t>(streams, l.max_connections));
  return l;
}

Muxer::Muxer(std::string path, uint64_t guest_cid, MuxerLimits limits)
    : guest_cid_(guest_cid),
      limits_(fitted_limits(limits)),
      listener_(std::move(path)),
      epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      timer_fd_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)),
      kick_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      next_id_(kFirstId) {
  if (!epoll_fd_ || !stop_fd_ || !timer_fd_ || !kick_fd_) throw_errno("vsock device setup");
  if (!watch(listener_.fd(), kListenerToken) || !watch(stop_fd_.get(), kStopToken) ||
      !watch(timer_fd_.get(), kTimerToken) || !watch(kick_fd_.get(), kKickToken))
    throw_errno("vsock: epoll_ctl");
  thread_ = std::thread([this] { loop(); });
}

Muxer::~Muxer() {
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_fd_.get(), &one, sizeof one);
  thread_.join();
}

bool Muxer::watch(int fd, uint64_t token) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  return ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

// --- Driver-facing entry points ------------------------------------------------

void Muxer::activate(const virtio::ActivateContext& ctx) {
  std::lock_guard lock(mu_);
  guest_.emplace(ctx, guest_cid_, refused_);
  tx_stalled_ = false;
}

void Muxer::reset() {
  std::lock_guard lock(mu_);
  // Closing the host sockets also takes them out of the epoll set; host
  // clients still waiting for "OK" see their socket closed and retry.
  conns_.clear();
  conn_ids_.clear();
  rst_backlog_.clear();
  ctl_queue_.clear();
  rx_waiters_.clear();
  tx_stalled_ = false;
  tx_buffer_full_ = false;
  tx_full_since_.reset();
  guest_.reset();
}

void Muxer::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!active()) return;
  if (index == GuestQueues::kRxQueue) pump_rx();
  if (index == GuestQueues::kTxQueue) process_tx();
  // The event queue's buffers stay with us until a TRANSPORT_RESET we never send.
  if (guest_) guest_->notify();
}

VsockStats Muxer::stats() const {
  VsockStats s;
  for (size_t i = 0; i < kRefusalCount; ++i) s.refused[i] = refused_[i].get();
  s.host_connects_ok = get(host_ok_);
  s.host_connects_failed = get(host_failed_);
  s.guest_connects_ok = get(guest_ok_);
  s.guest_connects_failed = get(guest_failed_);
  s.bytes_to_host = get(bytes_to_host_);
  s.bytes_to_guest = get(bytes_to_guest_);
  s.rst_sent = get(rst_sent_);
  s.credit_updates_sent = get(credit_updates_);
  s.tx_stalls = get(tx_stalls_);
  s.tx_buffer_stalls = get(tx_buffer_stalls_);
  s.accept_pauses = get(accept_pauses_);
  s.linger_resets = get(linger_resets_);
  std::lock_guard lock(mu_);
  s.connections = conns_.size();
  s.bytes_buffered_to_host = buffered_to_host_;
  return s;
}

// --- The device thread ------------------------------------------------------------

void Muxer::loop() {
  // Signals belong to the main thread's signalfd, never to device threads.
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_.get(), events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with a valid epoll fd
    }
    std::lock_guard lock(mu_);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kStopToken) return;
      handle_event(events[i].data.u64, events[i].events);
    }
    // Control packets the events produced go out now, with one interrupt.
    if (active()) pump_rx();
    if (guest_) guest_->notify();
  }
}

void Muxer::handle_event(uint64_t token, uint32_t events) {
  switch (token) {
    case kListenerToken: on_listener(); return;
    case kTimerToken:
      drain(timer_fd_.get());
      on_timer();
      return;
    case kKickToken:
      drain(kick_fd_.get());
      if (active()) process_tx();
      return;
    default: break;
  }
  if (clients_.contains(token)) {
    on_client(token);
    return;
  }
  const auto id = conn_ids_.find(token);
  if (id == conn_ids_.end()) return;  // closed earlier in this batch
  const ConnKey key = id->second;
  Connection* c = find(key);
  if (!c) return;
  if ((events & EPOLLOUT) || ((events & (EPOLLERR | EPOLLHUP)) && c->has_buffered())) {
    on_host_writable(*c);
    c = find(key);
    if (!c) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_host_readable(*c);
}

// --- Host-initiated streams ---------------------------------------------------------

void Muxer::on_listener() {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    int err = 0;
    UniqueFd fd = listener_.accept(err);
    if (!fd) {
      // Out of fds or memory the client stays queued and the level-triggered
      // listener readable: watching it now would spin this thread.
      if (err != EAGAIN) pause_listener();
      return;
    }
    if (clients_.size() >= limits_.max_pending_clients) {
      bump(host_failed_);
      continue;  // closed: the client retries later
    }
    const uint64_t id = next_id_++;
    if (!watch(fd.get(), id)) {
      bump(host_failed_);
      continue;
    }
    const auto deadline = Clock::now() + limits_.connect_timeout;
    clients_.emplace(id, PendingClient{std::move(fd), {}, deadline});
    arm_timer(deadline);
  }
}

void Muxer::pause_listener() {
  epoll_event ev{};
  ev.events = 0;
  ev.data.u64 = kListenerToken;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, listener_.fd(), &ev);
  listener_paused_until_ = Clock::now() + kAcceptBackoff;
  bump(accept_pauses_);
  arm_timer(*listener_paused_until_);
}

void Muxer::resume_listener() {
  listener_paused_until_.reset();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerToken;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, listener_.fd(), &ev);
}

void Muxer::on_client(uint64_t id) {
  auto it = clients_.find(id);
  const LineStatus st = read_connect_line(it->second.fd.get(), it->second.line);
  if (st == LineStatus::kIncomplete) return;
  UniqueFd fd = std::move(it->second.fd);
  const auto port = st == LineStatus::kDone ? parse_connect_line(it->second.line) : std::nullopt;
  clients_.erase(it);
  // The socket lives on as a stream: its events come back under a new token.
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd.get(), nullptr);
  if (!port) {
    bump(host_failed_);
    return;
  }
  start_host_connect(std::move(fd), *port);
}

void Muxer::start_host_connect(UniqueFd fd, uint32_t guest_port) {
  // Without a driver (not booted yet, or reset) nobody can answer: refuse
  // now, so the client retries instead of waiting for a timeout.
  if (!active() || conns_.size() >= limits_.max_connections) {
    bump(host_failed_);
    return;
  }
  const ConnKey key{allocate_host_port(guest_port), guest_port};
  const uint64_t id = next_id_++;
  auto conn = std::make_unique<Connection>(key, id, std::move(fd), Connection::State::kConnecting, true,
                                           &buffered_to_host_);
  conn->deadline = Clock::now() + limits_.connect_timeout;
  arm_timer(*conn->deadline);
  Connection& c = *conn;
  conns_.emplace(key, std::move(conn));
  conn_ids_.emplace(id, key);
  queue_control(c, Connection::kPendRequest);
  pump_rx();
}

uint32_t Muxer::allocate_host_port(uint32_t guest_port) {
  // At most conns_.size() keys use `guest_port`, so this many + 1 tries find a free one.
  uint32_t port = next_host_port_;
  for (size_t i = 0; i <= conns_.size(); ++i) {
    port = next_host_port_;
    next_host_port_ = port >= UINT32_MAX - 1 ? kFirstHostPort : port + 1;  // never VMADDR_PORT_ANY
    if (!conns_.contains({port, guest_port})) break;
  }
  return port;
}

// --- Host stream sockets ---------------------------------------------------------------

void Muxer::on_host_readable(Connection& c) {
  if (!active()) {
    // The queues broke: park the socket until the driver resets us.
    c.blocked_on_buffers = true;
    update_interest(c);
    return;
  }
  constexpr int kPacketsPerEvent = 64;  // then let other streams have a turn
  for (int i = 0; i < kPacketsPerEvent; ++i) {
    if (!c.wants_read()) break;
    if (c.pending) {
      // Control first: data must not overtake RESPONSE.
      const Flush f = flush_control(c);
      if (f == Flush::kFreed) return;
      if (f == Flush::kNoBuffers) {
        if (!c.blocked_on_buffers) rx_waiters_.push_back(c.key());
        c.blocked_on_buffers = true;
        break;
      }
    }
    const uint32_t credit = c.peer_credit();
    if (credit == 0) {
      c.blocked_on_credit = true;
      break;
    }
    auto chain = guest_->take_rx();
    if (!chain) {
      if (!c.blocked_on_buffers) rx_waiters_.push_back(c.key());
      c.blocked_on_buffers = true;
      break;
    }
    if (rx_payload_iovecs(guest_->mem(), *chain, std::min(credit, kMaxPayload), iov_) == 0) {
      // A header-only buffer: it can still carry our credit.
      const Header h = header_for(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
      guest_->complete_rx(*chain, h);
      c.credit_advertised(h);
      bump(credit_updates_);
      continue;
    }
    const auto r = c.read_from_host(iov_);
    if (r.status == Connection::ReadStatus::kData) {
      Header h = header_for(c, VIRTIO_VSOCK_OP_RW);
      h.len = r.bytes;
      guest_->complete_rx(*chain, h);
      c.credit_advertised(h);
      bump(bytes_to_guest_, r.bytes);
      continue;
    }
    guest_->give_back_rx(std::move(*chain));
    if (r.status == Connection::ReadStatus::kWouldBlock) break;
    if (r.status == Connection::ReadStatus::kError) {
      kill(c);
      return;
    }
    // EOF: the host will send no more.
    c.host_eof = true;
    if (c.both_shut()) {
      finish_if_done(c);
      return;
    }
    c.shutdown_flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
    queue_control(c, Connection::kPendShutdown);
    break;
  }
  update_interest(c);
}

void Muxer::on_host_writable(Connection& c) {
  const size_t before = c.buffered();
  if (!c.flush_to_host()) {
    kill(c);
    return;
  }
  const bool progress = c.buffered() < before;
  if (progress) c.host_progress = Clock::now();
  update_linger(c, progress);
  if (!c.has_buffered()) {
    if (c.guest_shut_send) c.shut_host_write();
    if (c.both_shut()) {
      finish_if_done(c);
      return;
    }
  }
  if (c.credit_update_due()) queue_control(c, Connection::kPendCreditUpdate);
  update_interest(c);
}

void Muxer::update_interest(Connection& c) {
  uint32_t want = 0;
  if (c.fd() >= 0) {
    if (c.wants_read() && !c.blocked_on_credit && !c.blocked_on_buffers) want |= EPOLLIN;
    if (c.has_buffered()) want |= EPOLLOUT;
  }
  if (want == c.epoll_events) return;
  // Not interested means not registered at all: EPOLLHUP is reported
  // whatever the mask, and would spin the loop on a parked socket.
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id();
  const int op = c.epoll_events == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (::epoll_ctl(epoll_fd_.get(), op, c.fd(), &ev) == 0) c.epoll_events = want;
}

// --- Timeouts ------------------------------------------------------------------------

void Muxer::arm_timer(Clock::time_point deadline) {
  if (timer_armed_ && *timer_armed_ <= deadline) return;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  itimerspec its{};
  its.it_value.tv_sec = ns / 1'000'000'000;
  its.it_value.tv_nsec = ns % 1'000'000'000;
  if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;  // 0 would disarm
  // steady_clock is CLOCK_MONOTONIC on Linux.
  if (::timerfd_settime(timer_fd_.get(), TFD_TIMER_ABSTIME, &its, nullptr) == 0) timer_armed_ = deadline;
}

void Muxer::update_linger(Connection& c, bool progress) {
  if (c.state() != Connection::State::kEstablished) return;
  if (!c.guest_shut_send || !c.has_buffered()) {
    c.deadline.reset();
    return;
  }
  if (c.deadline && !progress) return;
  c.deadline = Clock::now() + limits_.linger_timeout;
  arm_timer(*c.deadline);
}

void Muxer::on_timer() {
  timer_armed_.reset();
  const auto now = Clock::now();
  std::optional<Clock::time_point> next;
  auto later = [&](Clock::time_point t) { next = next ? std::min(*next, t) : t; };
  if (listener_paused_until_) {
    if (*listener_paused_until_ <= now) {
      resume_listener();
    } else {
      later(*listener_paused_until_);
    }
  }
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second.deadline <= now) {
      bump(host_failed_);  // no full CONNECT line in time
      it = clients_.erase(it);
    } else {
      later(it->second.deadline);
      ++it;
    }
  }
  std::vector<ConnKey> expired, stuck;
  for (const auto& [key, c] : conns_) {
    if (!c->deadline) continue;
    if (*c->deadline <= now) {
      expired.push_back(key);
    } else {
      later(*c->deadline);
    }
  }
  if (tx_full_since_) {
    const auto since = *tx_full_since_;
    if (since + limits_.linger_timeout <= now) {
      // Still over the buffer cap: hosts that took nothing meanwhile lose their streams.
      for (const auto& [key, c] : conns_)
        if (c->has_buffered() && c->host_progress <= since) stuck.push_back(key);
      tx_full_since_ = now;
    }
    later(*tx_full_since_ + limits_.linger_timeout);
  }
  for (const auto& key : stuck) {
    Connection* c = find(key);
    if (!c) continue;
    bump(linger_resets_);
    kill(*c);
  }
  for (const auto& key : expired) {
    Connection* c = find(key);
    if (!c) continue;
    if (c->state() == Connection::State::kConnecting) {
      bump(host_failed_);  // the guest did not answer our REQUEST
    } else {
      bump(linger_resets_);  // the host did not take the guest's last bytes
    }
    kill(*c);
  }
  if (next) arm_timer(*next);
}

void Muxer::self_kick() {
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(kick_fd_.get(), &one, sizeof one);
}

}  // namespace ksbox::devices::vsock
