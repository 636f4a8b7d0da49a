#include "devices/net/slirp_backend.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::devices::net {
namespace {

in_addr ipv4(const char* dotted) {
  in_addr a{};
  ::inet_pton(AF_INET, dotted, &a);
  return a;
}

std::string to_string(in_addr a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// IPv4 fragments never reach slirp: libslirp 4.7 (Debian 12) crashes the
// process (SIGBUS in ip_reass) on a lone last fragment with a nonzero
// offset, which any guest can send. With the MTU we give the guest (up to
// 65520) its own stack never fragments TCP (DF, path MTU) and fragments UDP
// only for datagrams above the MTU, so dropping them costs nothing real.
bool is_ipv4_fragment(std::span<const uint8_t> f) {
  if (f.size() < 14 + 20 || f[12] != 0x08 || f[13] != 0x00) return false;
  const uint16_t frag = static_cast<uint16_t>(f[14 + 6] << 8 | f[14 + 7]);
  return (frag & 0x3fff) != 0;  // MF or a fragment offset
}

int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

SlirpNetwork default_slirp_network(uint16_t mtu) {
  return {ipv4("10.0.2.0"), ipv4("255.255.255.0"), ipv4("10.0.2.2"), ipv4("10.0.2.3"), ipv4("10.0.2.15"), mtu};
}

SlirpBackend::SlirpBackend(SlirpOptions opts)
    : opts_(std::move(opts)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wake_fd_) throw_errno("eventfd");
  callbacks_.send_packet = cb_send_packet;
  callbacks_.guest_error = cb_guest_error;
  callbacks_.clock_get_ns = cb_clock_get_ns;
  callbacks_.timer_free = cb_timer_free;
  callbacks_.timer_mod = cb_timer_mod;
  callbacks_.register_poll_fd = cb_register_poll_fd;
  callbacks_.unregister_poll_fd = cb_unregister_poll_fd;
  callbacks_.notify = cb_notify;
  callbacks_.timer_new_opaque = cb_timer_new_opaque;

  SlirpConfig cfg{};
  cfg.version = 4;  // timer_new_opaque
  cfg.restricted = 0;
  cfg.in_enabled = true;
  cfg.vnetwork = opts_.net.network;
  cfg.vnetmask = opts_.net.netmask;
  cfg.vhost = opts_.net.gateway;
  cfg.vnameserver = opts_.net.dns;
  cfg.vdhcp_start = opts_.net.guest;
  cfg.in6_enabled = false;
  cfg.if_mtu = opts_.net.mtu;
  cfg.if_mru = opts_.net.mtu;
  cfg.disable_host_loopback = !opts_.host_loopback;
  cfg.disable_dns = opts_.disable_dns;
  cfg.vhostname = "ksbox";
  slirp_ = ::slirp_new(&cfg, &callbacks_, this);
  if (!slirp_) throw Error("slirp: cannot create the user-mode network");
  for (const auto& f : opts_.forwards) {
    if (::slirp_add_hostfwd(slirp_, 0, f.host_addr, f.host_port, opts_.net.guest, f.guest_port) < 0) {
      ::slirp_cleanup(slirp_);
      for (auto* t : timers_) delete t;
      throw Error(fmt::format("--publish {}:{}:{}: cannot listen on {}:{} (in use, or not an address of this host)",
                              to_string(f.host_addr), f.host_port, f.guest_port, to_string(f.host_addr),
                              f.host_port));
    }
  }
}

SlirpBackend::~SlirpBackend() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  ::slirp_cleanup(slirp_);  // frees its timers through cb_timer_free
  for (auto* t : timers_) delete t;
}

void SlirpBackend::start(FrameSink& sink) {
  sink_ = &sink;
  thread_ = std::thread([this] { loop(); });
}

bool SlirpBackend::can_send() {
  std::lock_guard lock(mu_);
  if (queue_.size() < kMaxQueuedFrames) return true;
  sender_blocked_ = true;
  return false;
}

void SlirpBackend::send_frame(std::span<const uint8_t> frame) {
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    was_empty = queue_.empty();
    queue_.emplace_back(frame.begin(), frame.end());
  }
  if (was_empty) wake();
}

std::vector<std::pair<std::string, uint64_t>> SlirpBackend::counters() const {
  return {{"slirp_guest_errors", guest_errors()}, {"ipv4_fragments_dropped", fragments_dropped()}};
}

uint64_t SlirpBackend::guest_errors() const { return guest_errors_.load(std::memory_order_relaxed); }
uint64_t SlirpBackend::fragments_dropped() const { return fragments_dropped_.load(std::memory_order_relaxed); }

void SlirpBackend::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void SlirpBackend::loop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    feed_queued_frames();

    pollfds_.clear();
    pollfds_.push_back({wake_fd_.get(), POLLIN, 0});
    auto timeout = static_cast<uint32_t>(poll_timeout_ms());
    ::slirp_pollfds_fill(slirp_, &timeout, cb_add_poll, this);
    const int n = ::poll(pollfds_.data(), pollfds_.size(), static_cast<int>(timeout));
    if (pollfds_[0].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] auto r = ::read(wake_fd_.get(), &v, sizeof v);
    }
    ::slirp_pollfds_poll(slirp_, n < 0 && errno != EINTR, cb_get_revents, this);
    run_timers();
  }
}

void SlirpBackend::feed_queued_frames() {
  bool unblock = false;
  {
    std::lock_guard lock(mu_);
    batch_.swap(queue_);
    unblock = sender_blocked_;
    sender_blocked_ = false;
  }
  for (const auto& f : batch_) {
    if (is_ipv4_fragment(f)) {
      fragments_dropped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    ::slirp_input(slirp_, f.data(), static_cast<int>(f.size()));
  }
  batch_.clear();
  // Outside our lock: the device takes its own lock and may call send_frame().
  if (unblock) sink_->backend_writable();
}

int SlirpBackend::poll_timeout_ms() {
  int64_t next = -1;
  for (const auto* t : timers_)
    if (t->expire_ms >= 0 && (next < 0 || t->expire_ms < next)) next = t->expire_ms;
  if (next < 0) return 1000;  // slirp_pollfds_fill lowers it when slirp needs to run sooner
  return static_cast<int>(std::clamp<int64_t>(next - now_ms(), 0, 1000));
}

void SlirpBackend::run_timers() {
  const int64_t now = now_ms();
  // A handler may modify or free timers: collect first, then fire each that is still due.
  std::vector<Timer*> due;
  for (auto* t : timers_)
    if (t->expire_ms >= 0 && t->expire_ms <= now) due.push_back(t);
  for (auto* t : due) {
    if (std::find(timers_.begin(), timers_.end(), t) == timers_.end() || t->expire_ms < 0 || t->expire_ms > now)
      continue;
    t->expire_ms = -1;
    ::slirp_handle_timer(slirp_, t->id, t->cb_opaque);
  }
}

// --- libslirp callbacks ---------------------------------------------------------

ssize_t SlirpBackend::cb_send_packet(const void* buf, size_t len, void* opaque) {
  auto* self = static_cast<SlirpBackend*>(opaque);
  self->sink_->receive_frame({static_cast<const uint8_t*>(buf), len});
  return static_cast<ssize_t>(len);
}

void SlirpBackend::cb_guest_error(const char*, void* opaque) {
  static_cast<SlirpBackend*>(opaque)->guest_errors_.fetch_add(1, std::memory_order_relaxed);
}

int64_t SlirpBackend::cb_clock_get_ns(void*) {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void* SlirpBackend::cb_timer_new_opaque(SlirpTimerId id, void* cb_opaque, void* opaque) {
  auto* self = static_cast<SlirpBackend*>(opaque);
  auto* t = new Timer{id, cb_opaque, -1};
  self->timers_.push_back(t);
  return t;
}

void SlirpBackend::cb_timer_free(void* timer, void* opaque) {
  auto* self = static_cast<SlirpBackend*>(opaque);
  auto* t = static_cast<Timer*>(timer);
  std::erase(self->timers_, t);
  delete t;
}

void SlirpBackend::cb_timer_mod(void* timer, int64_t expire_ms, void*) {
  static_cast<Timer*>(timer)->expire_ms = expire_ms;
}

// We rebuild the poll set every round from slirp_pollfds_fill.
void SlirpBackend::cb_register_poll_fd(int, void*) {}
void SlirpBackend::cb_unregister_poll_fd(int, void*) {}

void SlirpBackend::cb_notify(void* opaque) { static_cast<SlirpBackend*>(opaque)->wake(); }

int SlirpBackend::cb_add_poll(int fd, int events, void* opaque) {
  auto* self = static_cast<SlirpBackend*>(opaque);
  short ev = 0;
  if (events & SLIRP_POLL_IN) ev |= POLLIN;
  if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
  if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
  self->pollfds_.push_back({fd, ev, 0});
  return static_cast<int>(self->pollfds_.size() - 1);
}

int SlirpBackend::cb_get_revents(int idx, void* opaque) {
  auto* self = static_cast<SlirpBackend*>(opaque);
  if (idx < 0 || static_cast<size_t>(idx) >= self->pollfds_.size()) return 0;
  const short re = self->pollfds_[static_cast<size_t>(idx)].revents;
  int out = 0;
  if (re & POLLIN) out |= SLIRP_POLL_IN;
  if (re & POLLOUT) out |= SLIRP_POLL_OUT;
  if (re & POLLPRI) out |= SLIRP_POLL_PRI;
  if (re & POLLERR) out |= SLIRP_POLL_ERR;
  if (re & POLLHUP) out |= SLIRP_POLL_HUP;
  return out;
}

}  // namespace ksbox::devices::net
