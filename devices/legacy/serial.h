// A 16550A UART: the guest's console. Output leaves through a sink; input
// (host → guest) is queued into the receive FIFO.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/bus.h"

namespace ksbox::devices {

class Serial : public BusDevice {
 public:
  using Sink = std::function<void(std::span<const uint8_t>)>;
  using IrqTrigger = std::function<void()>;  // pulses the UART's interrupt line

  Serial(IrqTrigger irq, Sink sink) : irq_(std::move(irq)), sink_(std::move(sink)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues bytes for the guest; drops what does not fit the FIFO.
  void enqueue_input(std::span<const uint8_t> bytes);

  static constexpr uint64_t kRegisters = 8;
  static constexpr size_t kRxFifoSize = 64;

 private:
  uint8_t read_locked(uint64_t offset);
  void write_locked(uint64_t offset, uint8_t v);
  bool dlab() const { return lcr_ & 0x80; }
  bool loopback() const { return mcr_ & 0x10; }
  bool irq_wanted() const;

  IrqTrigger irq_;
  Sink sink_;
  std::mutex mu_;
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0, lcr_ = 0x03, mcr_ = 0x08, scr_ = 0, dll_ = 0x0c, dlm_ = 0;
  bool fifo_enabled_ = false;
  bool thre_pending_ = false;  // THR-empty interrupt not yet acknowledged
};

}  // namespace ksbox::devices
