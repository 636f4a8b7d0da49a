// virtio-fs (virtio 1.2 §5.11): the guest's FUSE requests, carried on
// virtqueues, served in the VMM process by FuseServer over a Passthrough of
// one host directory. No external daemon.
//
// Queue 0 is hiprio (FORGET, INTERRUPT), queue 1 the one request queue; both
// are served by the same server under one mutex, which also serialises
// against reset(). Every FUSE session starts fresh: reset() drops the server
// (and with it every inode and open file), activate() builds a new one, so a
// re-initialising driver must send INIT again.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "devices/fs/fuse_server.h"
#include "devices/fs/io_engine_factory.h"
#include "devices/fs/passthrough.h"
#include "devices/virtio/device.h"

namespace ksbox::devices::fs {

class VirtioFs final : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kHiprioQueue = 0, kRequestQueue = 1;
  static constexpr size_t kTagSize = 36;  // config tag field, NUL-padded (kMaxShareTagBytes)

  // Throws ksbox::Error if `tag` fails validate_share_tag(), `host_dir`
  // cannot be opened as a directory, or `io` is kIoUring and io_uring is
  // unavailable (kAuto falls back to synchronous I/O). `poll` (0: none) is
  // how long the device thread keeps watching the request queue after a
  // request, the driver's kicks suppressed meanwhile (poll()).
  VirtioFs(std::string_view tag, std::string host_dir, PassthroughOptions opts = {},
           IoEngineKind io = IoEngineKind::kAuto, std::chrono::microseconds poll = {});

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::span<const uint16_t> queue_max_sizes() const override { return queue_sizes_; }
  uint32_t config_size() const override { return static_cast<uint32_t>(config_.size()); }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;
  void write_config(uint32_t, std::span<const uint8_t>) override {}  // read-only
  bool activate(const virtio::ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;

  // Chains refused by the queue or with no usable request (completed empty).
  uint64_t requests_refused() const { return refused_.load(std::memory_order_relaxed); }
  // Requests handed to the FUSE server (replies or not).
  uint64_t requests_served() const { return served_.load(std::memory_order_relaxed); }
  // Chains taken off the request queue while polling it, which the driver
  // did not kick for.
  uint64_t requests_polled() const { return polled_.load(std::memory_order_relaxed); }
  // FUSE counters since the device was made, over every session (a copy).
  FuseStats fuse_stats();
  const std::string& tag() const { return tag_; }

 private:
  std::unique_ptr<FuseServer> make_server() const;
  void serve_chain(virtio::Queue& q, const virtio::DescriptorChain& chain);
  // Drains the FORGETs, then queue `index`, and raises one interrupt if the
  // driver wants one. With mu_ held and a context.
  void serve(uint16_t index);
  // Keeps serving request queue `index` until poll_ passes with nothing new.
  void poll(uint16_t index);
  // Serves every chain waiting on queue `index`; whether the driver wants
  // an interrupt for them. With mu_ held and a context.
  bool drain(uint16_t index);

  // FORGETs the guest gathers before it kicks: each kick and interrupt is
  // an exit, and a FORGET only lets the server close an fd. A request on
  // the request queue drains them all first; a full queue always kicks.
  static constexpr uint16_t kForgetKickBatch = kQueueSize / 4;
  // The longest a poll() lasts, in windows, however busy the guest.
  static constexpr int kPollSessionWindows = 20;

  static constexpr std::array<uint16_t, 2> queue_sizes_{kQueueSize, kQueueSize};
  std::string tag_;
  std::string host_dir_;
  PassthroughOptions opts_;
  IoEngineKind io_;
  std::chrono::microseconds poll_;
  std::array<uint8_t, kTagSize + 4> config_{};  // tag + le32 num_request_queues

  std::mutex mu_;  // the server, the context and the queues
  std::unique_ptr<FuseServer> server_;
  FuseStats past_;  // of the sessions before server_'s
  std::optional<virtio::ActivateContext> ctx_;
  std::atomic<uint64_t> refused_{0}, served_{0}, polled_{0};
};

}  // namespace ksbox::devices::fs
