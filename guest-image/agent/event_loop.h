// A single-threaded epoll loop with one-shot timers, and RAII handles for
// what is registered with it. Level-triggered: a handler that leaves data
// unread is called again on the next round, so no event is ever lost.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "vmm/unique_fd.h"

namespace ksbox::agent {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using IoHandler = std::function<void(uint32_t events)>;
  using TimerHandler = std::function<void()>;

  EventLoop();  // throws Error
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers fd (not owned) with its handler. events == 0 keeps the
  // registration but takes fd out of epoll, so not even EPOLLHUP/EPOLLERR
  // arrive (a paused pipe whose writer closed would otherwise spin).
  uint64_t add_io(int fd, uint32_t events, IoHandler handler);
  void set_io_events(uint64_t token, uint32_t events);
  // Must be called before fd is closed: a forked child may still hold a
  // duplicate, and epoll keeps reporting a description that is still open.
  void remove_io(uint64_t token);

  uint64_t add_timer(Clock::duration after, TimerHandler handler);
  void cancel_timer(uint64_t id);

  // Waits for the next events or timers and dispatches them. A handler may
  // add or remove any registration, including its own. Exceptions from
  // handlers propagate (the remaining events come back next round).
  void run_once();

 private:
  struct Io {
    int fd = -1;
    uint32_t events = 0;
    IoHandler handler;
  };
  struct Timer {
    Clock::time_point when;
    TimerHandler handler;
  };
  int next_timeout_ms() const;
  void fire_due_timers();

  UniqueFd epfd_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Io> ios_;
  std::unordered_map<uint64_t, Timer> timers_;
  std::set<std::pair<Clock::time_point, uint64_t>> timer_order_;
};

// An owned fd registered with a loop. Unregisters before closing.
class WatchedFd {
 public:
  WatchedFd() = default;
  WatchedFd(EventLoop& loop, UniqueFd fd, uint32_t events, EventLoop::IoHandler handler);
  WatchedFd(WatchedFd&& o) noexcept { *this = std::move(o); }
  WatchedFd& operator=(WatchedFd&& o) noexcept;
  ~WatchedFd() { reset(); }

  int get() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  uint32_t events() const { return events_; }
  void set_events(uint32_t events);
  void reset();

 private:
  EventLoop* loop_ = nullptr;
  UniqueFd fd_;
  uint64_t token_ = 0;
  uint32_t events_ = 0;
};

// A pending one-shot timer; cancelled when destroyed or reset.
class TimerHandle {
 public:
  TimerHandle() = default;
  TimerHandle(EventLoop& loop, EventLoop::Clock::duration after, EventLoop::TimerHandler handler);
  TimerHandle(TimerHandle&& o) noexcept { *this = std::move(o); }
  TimerHandle& operator=(TimerHandle&& o) noexcept;
  ~TimerHandle() { reset(); }
  bool armed() const { return id_ != 0; }
  void reset();

 private:
  EventLoop* loop_ = nullptr;
  uint64_t id_ = 0;
};

}  // namespace ksbox::agent
