// The user-mode network: libslirp, in the VMM process, on a thread of its
// own. The guest's TCP and UDP become ordinary host sockets of this
// process, so no TAP device, bridge or root is needed.
//
// The slirp instance is only touched by this backend's thread (slirp is
// not thread-safe): frames from the device wait in a bounded queue that the
// thread feeds to slirp_input(); slirp's own output goes to the sink from
// the same thread. IPv4 fragments are dropped before slirp sees them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <slirp/libslirp.h>

#include "devices/net/backend.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::net {

// A host TCP port whose connections go to a guest port.
struct PortForward {
  in_addr host_addr{};  // network order
  uint16_t host_port = 0;
  uint16_t guest_port = 0;
};

// The guest's IPv4 network (all in network byte order).
struct SlirpNetwork {
  in_addr network, netmask, gateway, dns, guest;
  uint16_t mtu = 1500;
};
// 10.0.2.0/24: gateway .2, DNS .3, guest .15 (QEMU's well-known defaults).
SlirpNetwork default_slirp_network(uint16_t mtu);

struct SlirpOptions {
  SlirpNetwork net;
  // Connections to the gateway address reach the host's 127.0.0.1.
  bool host_loopback = true;
  // slirp neither answers nor forwards DNS (the egress filter resolves).
  bool disable_dns = false;
  std::vector<PortForward> forwards;
};

class SlirpBackend final : public NetBackend {
 public:
  // Frames from the guest waiting for the slirp thread, at most.
  static constexpr size_t kMaxQueuedFrames = 1024;

  // Creates the slirp instance and binds every forward; throws Error (with
  // the address that could not be bound). The thread starts in start().
  explicit SlirpBackend(SlirpOptions opts);
  ~SlirpBackend() override;  // stops the thread, closes every socket

  void start(FrameSink& sink) override;
  bool can_send() override;
  void send_frame(std::span<const uint8_t> frame) override;

  // Frames slirp complained about; IPv4 fragments dropped (see slirp_backend.cc).
  uint64_t guest_errors() const;
  uint64_t fragments_dropped() const;
  // Both of the above, named for the control socket.
  std::vector<std::pair<std::string, uint64_t>> counters() const override;

 private:
  struct Timer {
    SlirpTimerId id;
    void* cb_opaque;
    int64_t expire_ms = -1;  // -1: not armed
  };

  void loop();
  void feed_queued_frames();
  int poll_timeout_ms();
  void run_timers();
  void wake();

  // libslirp callbacks (opaque = this).
  static ssize_t cb_send_packet(const void* buf, size_t len, void* opaque);
  static void cb_guest_error(const char* msg, void* opaque);
  static int64_t cb_clock_get_ns(void* opaque);
  static void* cb_timer_new_opaque(SlirpTimerId id, void* cb_opaque, void* opaque);
  static void cb_timer_free(void* timer, void* opaque);
  static void cb_timer_mod(void* timer, int64_t expire_ms, void* opaque);
  static void cb_register_poll_fd(int fd, void* opaque);
  static void cb_unregister_poll_fd(int fd, void* opaque);
  static void cb_notify(void* opaque);
  static int cb_add_poll(int fd, int events, void* opaque);
  static int cb_get_revents(int idx, void* opaque);

  const SlirpOptions opts_;
  SlirpCb callbacks_{};
  Slirp* slirp_ = nullptr;
  FrameSink* sink_ = nullptr;
  UniqueFd wake_fd_;  // eventfd: frames queued, or stop

  std::mutex mu_;  // the queue and stop flag
  std::deque<std::vector<uint8_t>> queue_;
  bool stopping_ = false;
  bool sender_blocked_ = false;  // can_send() said no since the last backend_writable()

  // Slirp thread only.
  std::vector<Timer*> timers_;
  std::vector<::pollfd> pollfds_;
  std::deque<std::vector<uint8_t>> batch_;
  std::atomic<uint64_t> guest_errors_{0}, fragments_dropped_{0};

  std::thread thread_;
};

}  // namespace ksbox::devices::net
