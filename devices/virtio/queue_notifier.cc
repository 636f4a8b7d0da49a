#include "devices/virtio/queue_notifier.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <csignal>

#include "vmm/error.h"

namespace ksbox::devices::virtio {

namespace {
constexpr uint64_t kStopTag = UINT64_MAX, kHostEventTag = UINT64_MAX - 1;
}  // namespace

QueueNotifier::QueueNotifier(MmioTransport& transport, std::vector<UniqueFd> queue_fds,
                             std::shared_ptr<VirtioDevice> device)
    : transport_(transport),
      device_(std::move(device)),
      queue_fds_(std::move(queue_fds)),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!stop_fd_ || !epoll_fd_) throw_errno("virtio notifier setup");
  auto watch = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl");
  };
  for (size_t i = 0; i < queue_fds_.size(); ++i) watch(queue_fds_[i].get(), i);
  watch(stop_fd_.get(), kStopTag);
  if (device_ && device_->host_event_fd() >= 0) watch(device_->host_event_fd(), kHostEventTag);
  thread_ = std::thread([this] { loop(); });
}

QueueNotifier::~QueueNotifier() {
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_fd_.get(), &one, sizeof one);
  thread_.join();
}

void QueueNotifier::loop() {
  // Signals belong to the main thread's signalfd, never to device threads.
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  epoll_event events[8];
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_.get(), events, 8, -1);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kStopTag) return;
      if (tag == kHostEventTag) {
        device_->on_host_event();
        continue;
      }
      uint64_t count;
      if (::read(queue_fds_[tag].get(), &count, sizeof count) == sizeof count)
        transport_.notify(static_cast<uint32_t>(tag));
    }
  }
}

}  // namespace ksbox::devices::virtio
