// The device thread of one virtio-mmio device: sleeps in epoll on one KVM
// ioeventfd per queue (guest writes to QueueNotify never reach userspace)
// and hands each kick to the transport; also serves the device's own host
// event fd (VirtioDevice::host_event_fd(), e.g. I/O completions), if any.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "devices/virtio/mmio_transport.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::virtio {

class QueueNotifier {
 public:
  // `queue_fds[i]` is the ioeventfd of queue i; `device` is the transport's
  // device (nullptr: kicks only). Starts the thread.
  QueueNotifier(MmioTransport& transport, std::vector<UniqueFd> queue_fds,
                std::shared_ptr<VirtioDevice> device = nullptr);
  ~QueueNotifier();  // stops and joins the thread
  QueueNotifier(const QueueNotifier&) = delete;
  QueueNotifier& operator=(const QueueNotifier&) = delete;

 private:
  void loop();

  MmioTransport& transport_;
  std::shared_ptr<VirtioDevice> device_;
  std::vector<UniqueFd> queue_fds_;
  UniqueFd stop_fd_, epoll_fd_;
  std::thread thread_;
};

}  // namespace ksbox::devices::virtio
