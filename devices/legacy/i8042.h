// Just enough of the i8042 keyboard controller for Linux's reboot=k: the
// "pulse reset line" command (0xFE on port 0x64) ends the VM.
#pragma once

#include <functional>

#include "vmm/bus.h"

namespace ksbox::devices {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kDataPort = 0x60;
  static constexpr uint64_t kCommandPort = 0x64;
  static constexpr uint8_t kCmdResetCpu = 0xfe;

  explicit I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

  // Registered on [0x60, 0x65): offsets 0 (data) and 4 (status/command).
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void()> on_reset_;
};

}  // namespace ksbox::devices
