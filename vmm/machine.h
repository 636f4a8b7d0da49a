// Builds an x86_64 microVM from a MachineConfig and runs it to completion.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "devices/balloon/virtio_balloon.h"
#include "devices/fs/virtio_fs.h"
#include "devices/legacy/serial.h"
#include "devices/net/virtio_net.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/queue_notifier.h"
#include "vmm/bus.h"
#include "vmm/exit_status.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm.h"
#include "vmm/machine_config.h"
#include "vmm/mapped_file.h"
#include "vmm/panic_watcher.h"
#include "vmm/unique_fd.h"
#include "vmm/vm_control.h"

namespace ksbox {

class Machine {
 public:
  // Creates the VM, loads the kernel and sets up every vCPU. Throws Error.
  explicit Machine(const MachineConfig& cfg);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Runs until the guest resets or crashes, or a signal arrives.
  ExitStatus run();

 private:
  static MachineConfig checked(const MachineConfig& cfg);
  void load_guest();
  void add_legacy_devices();
  // Maps `device` into the next virtio-mmio slot with its IRQ, irqfd and
  // ioeventfds, and records the kernel argument that announces it.
  void add_virtio_device(std::shared_ptr<devices::virtio::VirtioDevice> device);
  // virtio-net on the user-mode network, announced to the agent as ksbox.net=.
  void add_network();
  void create_vcpus(unsigned count);
  void on_console_output(std::span<const uint8_t> bytes);

  // Declaration order matters: arguments and files are checked before KVM is opened.
  MachineConfig cfg_;
  MappedFile kernel_image_;
  std::optional<MappedFile> initrd_image_;
  Kvm kvm_;
  Vm vm_;
  std::unique_ptr<GuestMemory> mem_;
  Bus pio_{"port I/O"};
  Bus mmio_{"MMIO"};
  VmControl ctl_;
  std::vector<Vcpu> vcpus_;
  uint64_t entry_ = 0;  // kernel's 64-bit entry point
  UniqueFd console_fd_;  // owned only when logging to a file
  int console_out_ = 1;
  PanicWatcher panic_watcher_;  // fed under the serial device's lock
  std::vector<UniqueFd> irq_fds_;
  std::vector<UniqueFd> ack_fds_;  // in-kernel INTERRUPT_ACK(VRING) writes
  uint32_t next_memory_slot_ = 0;
  bool readonly_slots_ = false;  // KVM_CAP_READONLY_MEM: register pages
  std::shared_ptr<devices::Serial> serial_;
  std::vector<std::string> device_args_;  // virtio_mmio.device=... for the command line
  std::shared_ptr<devices::balloon::VirtioBalloon> balloon_;  // nullptr with --balloon off
  std::vector<std::shared_ptr<devices::fs::VirtioFs>> shares_;
  std::shared_ptr<devices::net::VirtioNet> net_;  // nullptr with --network off
  // Declared last: their threads use the transports and guest memory above.
  std::vector<std::shared_ptr<devices::virtio::MmioTransport>> transports_;
  std::vector<std::unique_ptr<devices::virtio::QueueNotifier>> notifiers_;
};

}  // namespace ksbox
