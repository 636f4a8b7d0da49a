#include "cli/output_writer.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "vmm/error.h"

namespace ksbox::cli {

struct OutputWriter::State {
  std::mutex mu;
  std::condition_variable cv;       // the thread waits for work; the owner for `finished`
  std::deque<std::pair<int, std::vector<uint8_t>>> queue;
  size_t pending = 0;               // queued + in flight
  std::vector<int> failed_fds;      // writes to these are dropped
  std::vector<Failure> failures;    // not yet taken
  bool stop = false;
  bool finished = false;
  UniqueFd notify;                  // eventfd: progress/failure, for the owner's poll
  UniqueFd wake;                    // eventfd: stop, for the thread's poll on EAGAIN

  void signal_owner() {
    const uint64_t one = 1;
    (void)!::write(notify.get(), &one, sizeof(one));
  }
  bool stopping() {
    std::lock_guard lock(mu);
    return stop;
  }

  // Writes all of bytes to fd, waiting out EAGAIN (a non-blocking fd we were
  // given). Returns 0 or the errno of the failure.
  int write_all(int fd, const std::vector<uint8_t>& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        pollfd p[2] = {{fd, POLLOUT, 0}, {wake.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0 && errno != EINTR) return errno;
        if (p[1].revents & POLLIN) return 0;  // stopping: the rest is dropped
        continue;
      }
      return n < 0 ? errno : EIO;
    }
    return 0;
  }

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || !queue.empty(); });
      if (stop) break;
      auto [fd, bytes] = std::move(queue.front());
      queue.pop_front();
      const bool skip = std::ranges::find(failed_fds, fd) != failed_fds.end();
      lock.unlock();
      const int err = skip ? 0 : write_all(fd, bytes);
      lock.lock();
      pending -= bytes.size();
      if (err != 0) {
        failed_fds.push_back(fd);
        failures.push_back({fd, err});
      }
      signal_owner();
    }
    finished = true;
    cv.notify_all();
  }
};

OutputWriter::OutputWriter() : state_(std::make_shared<State>()) {
  state_->notify = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  state_->wake = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!state_->notify || !state_->wake) throw_errno("eventfd");
  // Signals belong to the exec loop's signalfd: the thread must never take one.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread([s = state_] { s->run(); }).detach();
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

OutputWriter::~OutputWriter() {
  std::unique_lock lock(state_->mu);
  state_->stop = true;
  state_->queue.clear();
  state_->cv.notify_all();
  const uint64_t one = 1;
  (void)!::write(state_->wake.get(), &one, sizeof(one));
  // The thread owns a reference to the state, so it may outlive us if a
  // blocking write() never returns; otherwise it is done within a moment.
  state_->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return state_->finished; });
}

void OutputWriter::push(int fd, std::vector<uint8_t> bytes) {
  if (bytes.empty()) return;
  std::lock_guard lock(state_->mu);
  state_->pending += bytes.size();
  state_->queue.emplace_back(fd, std::move(bytes));
  state_->cv.notify_one();
}

size_t OutputWriter::pending() const {
  std::lock_guard lock(state_->mu);
  return state_->pending;
}

int OutputWriter::notify_fd() const { return state_->notify.get(); }

void OutputWriter::ack() {
  uint64_t v = 0;
  (void)!::read(state_->notify.get(), &v, sizeof(v));
}

std::vector<OutputWriter::Failure> OutputWriter::take_failures() {
  std::lock_guard lock(state_->mu);
  return std::exchange(state_->failures, {});
}

void OutputWriter::discard() {
  std::lock_guard lock(state_->mu);
  for (const auto& [fd, bytes] : state_->queue) state_->pending -= bytes.size();
  state_->queue.clear();
}

}  // namespace ksbox::cli
