// The device thread of one virtio-mmio device: sleeps in epoll on one KVM
// ioeventfd per queue (guest writes to QueueNotify never reach userspace)
// and hands each kick to the transport.
#pragma once

#include <thread>
#include <vector>

#include "devices/virtio/mmio_transport.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::virtio {

class QueueNotifier {
 public:
  // `queue_fds[i]` is the ioeventfd of queue i. Starts the thread.
  QueueNotifier(MmioTransport& transport, std::vector<UniqueFd> queue_fds);
  ~QueueNotifier();  // stops and joins the thread
  QueueNotifier(const QueueNotifier&) = delete;
  QueueNotifier& operator=(const QueueNotifier&) = delete;

 private:
  void loop();

  MmioTransport& transport_;
  std::vector<UniqueFd> queue_fds_;
  UniqueFd stop_fd_, epoll_fd_;
  std::thread thread_;
};

}  // namespace ksbox::devices::virtio
