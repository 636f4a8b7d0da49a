#include "event_loop.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "vmm/error.h"

namespace ksbox::agent {

EventLoop::EventLoop() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epfd_) throw_errno("epoll_create1");
}

uint64_t EventLoop::add_io(int fd, uint32_t events, IoHandler handler) {
  const uint64_t token = next_id_++;
  ios_.emplace(token, Io{fd, 0, std::move(handler)});
  try {
    set_io_events(token, events);
  } catch (...) {
    ios_.erase(token);
    throw;
  }
  return token;
}

void EventLoop::set_io_events(uint64_t token, uint32_t events) {
  auto it = ios_.find(token);
  if (it == ios_.end()) return;
  Io& io = it->second;
  if (io.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  int rc = 0;
  if (events == 0) {
    rc = ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, io.fd, nullptr);
  } else {
    rc = ::epoll_ctl(epfd_.get(), io.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, io.fd, &ev);
  }
  if (rc < 0) throw_errno("epoll_ctl");
  io.events = events;
}

void EventLoop::remove_io(uint64_t token) {
  auto it = ios_.find(token);
  if (it == ios_.end()) return;
  if (it->second.events != 0) ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
  ios_.erase(it);
}

uint64_t EventLoop::add_timer(Clock::duration after, TimerHandler handler) {
  const uint64_t id = next_id_++;
  const auto when = Clock::now() + after;
  timers_.emplace(id, Timer{when, std::move(handler)});
  timer_order_.emplace(when, id);
  return id;
}

void EventLoop::cancel_timer(uint64_t id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  timer_order_.erase({it->second.when, id});
  timers_.erase(it);
}

int EventLoop::next_timeout_ms() const {
  if (timer_order_.empty()) return -1;
  const auto left = timer_order_.begin()->first - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  // Round up so we never wake just before the deadline and spin.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

void EventLoop::fire_due_timers() {
  const auto now = Clock::now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    const uint64_t id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto node = timers_.extract(id);
    node.mapped().handler();  // may add/cancel timers; this one is gone already
  }
}

void EventLoop::run_once() {
  std::array<epoll_event, 64> events{};
  const int n = ::epoll_wait(epfd_.get(), events.data(), static_cast<int>(events.size()), next_timeout_ms());
  if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
  for (int i = 0; i < n; ++i) {
    auto it = ios_.find(events[i].data.u64);
    if (it == ios_.end() || it->second.events == 0) continue;  // removed/paused by an earlier handler
    // A copy: the handler may remove its own registration.
    IoHandler handler = it->second.handler;
    handler(events[i].events);
  }
  fire_due_timers();
}

WatchedFd::WatchedFd(EventLoop& loop, UniqueFd fd, uint32_t events, EventLoop::IoHandler handler)
    : loop_(&loop), fd_(std::move(fd)), events_(events) {
  token_ = loop.add_io(fd_.get(), events, std::move(handler));
}

WatchedFd& WatchedFd::operator=(WatchedFd&& o) noexcept {
  if (this != &o) {
    reset();
    loop_ = std::exchange(o.loop_, nullptr);
    fd_ = std::move(o.fd_);
    token_ = std::exchange(o.token_, 0);
    events_ = std::exchange(o.events_, 0);
  }
  return *this;
}

void WatchedFd::set_events(uint32_t events) {
  if (!loop_ || events == events_) return;
  loop_->set_io_events(token_, events);
  events_ = events;
}

void WatchedFd::reset() {
  if (loop_) loop_->remove_io(token_);
  loop_ = nullptr;
  token_ = 0;
  events_ = 0;
  fd_.reset();
}

TimerHandle::TimerHandle(EventLoop& loop, EventLoop::Clock::duration after, EventLoop::TimerHandler handler)
    : loop_(&loop), id_(loop.add_timer(after, std::move(handler))) {}

TimerHandle& TimerHandle::operator=(TimerHandle&& o) noexcept {
  if (this != &o) {
    reset();
    loop_ = std::exchange(o.loop_, nullptr);
    id_ = std::exchange(o.id_, 0);
  }
  return *this;
}

void TimerHandle::reset() {
  if (loop_ && id_) loop_->cancel_timer(id_);
  loop_ = nullptr;
  id_ = 0;
}

}  // namespace ksbox::agent
