// What a virtio device (blk, net, vsock, fs, ...) implements, independent of
// the transport that exposes it to the guest. The transport owns the register
// file, feature negotiation, queue configuration and the status state
// machine; the device sees only the outcome, through ActivateContext.
#pragma once

#include <cstdint>
#include <span>

#include "devices/virtio/queue.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::virtio {

// Implemented by the transport; callable from any thread.
class Interrupt {
 public:
  virtual ~Interrupt() = default;
  // Call after add_used() when queue.should_notify() says so.
  virtual void signal_used_queue(uint16_t queue) = 0;
  virtual void signal_config_change() = 0;
  // A guest-caused fault the device cannot recover from (e.g. a queue went
  // broken): sets DEVICE_NEEDS_RESET and tells the driver.
  virtual void signal_needs_reset() = 0;
};

struct ActivateContext {
  uint64_t features = 0;      // negotiated: a subset of device_features()
  std::span<Queue> queues;    // one per queue_max_sizes() entry; check ready()
  const GuestMemory* mem = nullptr;
  Interrupt* interrupt = nullptr;
  // All of the above stay valid until the device's reset() returns.
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_type() const = 0;  // VIRTIO_ID_* from <linux/virtio_ids.h>
  // Must include VIRTIO_F_VERSION_1 (modern only). Ring features
  // (VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX) may be offered:
  // the Queue implements them.
  virtual uint64_t device_features() const = 0;
  // Maximum size of each queue (powers of two, at most 32768); the span's size
  // is the number of queues.
  virtual std::span<const uint16_t> queue_max_sizes() const = 0;

  // Device-specific configuration space. The transport only forwards
  // accesses that lie wholly inside [0, config_size()).
  virtual uint32_t config_size() const = 0;
  // Also called from the thread that signals a config change (the transport
  // copies the config into its register page), so it must not wait for a
  // lock held while calling Interrupt.
  virtual void read_config(uint32_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint32_t offset, std::span<const uint8_t> data) = 0;

  // Called once, when the driver sets DRIVER_OK. Returning false (the device
  // cannot run with what the driver set up) makes the transport set
  // DEVICE_NEEDS_RESET.
  virtual bool activate(const ActivateContext& ctx) = 0;
  // Driver reset (status 0) of an activated device: stop using the queues
  // and guest memory before returning, including a process_queue() still
  // running on another thread (the transport resets the queues right after).
  virtual void reset() = 0;
  // The driver notified queue `index` (< number of queues). May be called
  // from a vCPU thread (MMIO) or the device's own thread (ioeventfd), and,
  // racing with a reset, after reset(): ignore it when not active.
  virtual void process_queue(uint16_t index) = 0;

  // A host fd the device thread watches besides the queue kicks (e.g. the
  // eventfd of an io_uring's completions), or -1; fixed for the device's
  // lifetime. When it is readable the thread calls on_host_event(), which
  // must consume the readiness (read the eventfd).
  virtual int host_event_fd() const { return -1; }
  virtual void on_host_event() {}
};

}  // namespace ksbox::devices::virtio
