// virtio-vsock (virtio 1.2 §5.10), served by the VMM itself: guest streams
// are bridged to Unix sockets on the host, Firecracker style.
//
//  - Host-initiated: a host client connects to `path`, writes
//    "CONNECT <port>\n" and reads "OK <hostport>\n" once the guest accepted;
//    the socket is then the stream. Refused (closed without "OK") when the
//    line is bad or late (2 s), nobody listens on the guest port, the guest
//    does not answer within 2 s, or the driver is not up yet: clients retry.
//  - Guest-initiated: a guest connect to CID 2 port P goes to the Unix socket
//    "<path>_<P>"; nobody listening there means RST.
//
// The listener exists from construction on (before the guest boots) and is
// unlinked by the destructor.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "devices/virtio/device.h"
#include "devices/vsock/muxer.h"

namespace ksbox::devices {

class VirtioVsock final : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;

  // Binds the listener at `path`; throws Error for an invalid CID (3 ..
  // 0xfffffffe), a path in use by a live process, a non-socket file there,
  // or a path too long for a Unix socket.
  VirtioVsock(std::string path, uint64_t guest_cid, vsock::MuxerLimits limits = {});
  ~VirtioVsock() override;  // stops the device thread, unlinks the socket

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::span<const uint16_t> queue_max_sizes() const override { return queue_sizes_; }
  // le64 guest_cid, read-only.
  uint32_t config_size() const override { return sizeof(uint64_t); }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;
  void write_config(uint32_t offset, std::span<const uint8_t> data) override;
  bool activate(const virtio::ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;

  uint64_t guest_cid() const { return guest_cid_; }
  const std::string& path() const { return muxer_->path(); }
  vsock::VsockStats stats() const { return muxer_->stats(); }

 private:
  static constexpr std::array<uint16_t, 3> queue_sizes_{kQueueSize, kQueueSize, kQueueSize};
  const uint64_t guest_cid_;
  std::unique_ptr<vsock::Muxer> muxer_;
};

}  // namespace ksbox::devices
