// virtio-mmio version 2 (virtio 1.2 §4.2.2): the register file, feature
// negotiation and the device status state machine in front of a
// VirtioDevice. Every register value comes from the guest: bad accesses are
// refused and counted, never fatal.
//
// Threads: read()/write() come from vCPU threads and are serialised by a
// mutex. notify() and the Interrupt callbacks take no register lock, so a
// device may call them from its own thread (ioeventfd wakeups, completions).
//
// With a RegisterPage, the guest reads the registers from that page while
// the device runs (DRIVER_OK until reset), and the transport keeps the page
// current: after every register write, and at once for what changes behind
// the driver's back (interrupt status, NEEDS_RESET, config changes).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "devices/virtio/device.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/register_page.h"
#include "devices/virtio/ring.h"
#include "vmm/bus.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::virtio {

struct MmioStats {
  uint64_t malformed_accesses = 0;     // wrong size/alignment, unknown or wrong-direction register
  uint64_t refused_writes = 0;         // writes the state machine does not allow now
  uint64_t features_rejected = 0;      // FEATURES_OK refused (bad driver features)
  uint64_t queue_configs_refused = 0;  // QueueReady=1 with an invalid queue
  uint64_t bad_notifies = 0;           // queue index out of range, or device not active
  uint64_t needs_reset = 0;            // times DEVICE_NEEDS_RESET was raised
  uint64_t reads = 0;                  // register and config reads that reached the VMM
  uint64_t writes = 0;                 // ... and writes (not those ending in an ioeventfd)
};

class MmioTransport final : public BusDevice, private Interrupt {
 public:
  // Raises the device's interrupt line (the machine wires it to a KVM irqfd).
  using IrqTrigger = std::function<void()>;

  static constexpr uint64_t kWindowSize = 0x1000;  // one 4 KiB slot
  static constexpr uint32_t kMagic = 0x74726976;   // "virt"
  static constexpr uint32_t kVersion = 2;
  static constexpr uint32_t kVendorId = 0x7862736b;  // "ksbx"
  static constexpr uint64_t kConfigOffset = 0x100;
  static_assert(kWindowSize == RegisterPage::kSize);

  // The transport offers the device's features minus the transport-range
  // bits it does not implement (only INDIRECT_DESC, EVENT_IDX, VERSION_1).
  // Throws Error when the device lacks VIRTIO_F_VERSION_1 or has a bad queue
  // max size. `mem` must outlive the transport.
  MmioTransport(const GuestMemory& mem, std::shared_ptr<VirtioDevice> device, IrqTrigger irq);
  ~MmioTransport() override;  // resets an activated device: it drops our queues
  MmioTransport(const MmioTransport&) = delete;
  MmioTransport& operator=(const MmioTransport&) = delete;

  // Before the guest runs. The page is shown to the guest at DRIVER_OK.
  void set_register_page(std::unique_ptr<RegisterPage> page);

  // BusDevice: registers take aligned 32-bit accesses only; the config
  // space (from 0x100) takes 1, 2, 4 or 8 bytes.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // A driver notification for `queue`: from QueueNotify writes, and later
  // from ioeventfd wakeups. Refused and counted when out of range or before
  // DRIVER_OK. Sets DEVICE_NEEDS_RESET when processing left the queue broken.
  void notify(uint32_t queue);

  // Views for the machine, metrics and tests.
  uint32_t status() const { return status_.load(); }
  uint32_t interrupt_status() const { return interrupt_status_.load(); }
  bool activated() const { return activated_.load(); }
  uint32_t device_type() const { return device_->device_type(); }
  uint64_t offered_features() const { return offered_features_; }
  uint64_t driver_features() const;
  size_t num_queues() const { return queues_.size(); }
  const Queue& queue(size_t index) const { return queues_.at(index); }
  Interrupt& interrupt() { return *this; }
  MmioStats stats() const;
  bool register_page_mapped() const;

 private:
  // Interrupt, for the device.
  void signal_used_queue(uint16_t queue) override;
  void signal_config_change() override;
  void signal_needs_reset() override;

  // A 1/2/4/8-byte access wholly inside the device's config space (offset
  // from the window start); counts a malformed access otherwise.
  bool config_access_ok(uint64_t offset, uint64_t n);
  uint32_t read_register(uint64_t offset);
  // What a readable register reads as; nullopt for any other offset.
  std::optional<uint32_t> register_value(uint64_t offset) const;
  void write_register(uint64_t offset, uint32_t v);
  void write_status(uint32_t v);
  void write_queue_address(uint64_t offset, uint32_t v);
  // The selected queue if queue registers may be written now; else counts a
  // refused write and returns nullptr.
  Queue* writable_queue();
  bool features_acceptable() const;
  void activate();
  void reset();
  void raise_interrupt(uint32_t interrupt_bits);
  // Register page upkeep. render_page() needs mu_ and writes everything;
  // publish() needs page_mu_ and writes one register word.
  void render_page();
  void publish(uint64_t offset, uint32_t v);
  void copy_config_to_page();  // needs page_mu_
  void map_page(bool mapped);

  const GuestMemory& mem_;
  const std::shared_ptr<VirtioDevice> device_;
  const IrqTrigger irq_;
  const uint64_t offered_features_;

  mutable std::mutex mu_;  // the register file below
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t shm_sel_ = 0;
  std::vector<Queue> queues_;  // fixed size; never reallocated after construction
  std::unique_ptr<RegisterPage> page_;  // set before the guest runs, or null
  bool page_mapped_ = false;

  // Orders each change of the atomics below with its store into the page,
  // so the page's last word is always the atomic's latest value.
  std::mutex page_mu_;

  // Also touched by the device's thread through Interrupt/notify().
  std::atomic<uint32_t> status_{0};
  std::atomic<uint32_t> interrupt_status_{0};
  std::atomic<uint32_t> config_generation_{0};
  std::atomic<bool> activated_{false};

  Counter malformed_, refused_, features_rejected_, queue_configs_refused_, bad_notifies_, needs_reset_;
  Counter reads_, writes_;
};

}  // namespace ksbox::devices::virtio
