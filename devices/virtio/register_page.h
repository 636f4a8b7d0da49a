// A page of host memory that the guest sees, read-only, in place of a
// virtio-mmio register window. Register reads (INTERRUPT_STATUS, in every
// interrupt handler) then are plain loads instead of exits; writes still
// exit. The transport keeps the page equal to what its registers read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ksbox::devices::virtio {

class RegisterPage {
 public:
  static constexpr size_t kSize = 4096;

  virtual ~RegisterPage() = default;
  // The host's view: 4 KiB, 4-byte aligned at least.
  virtual std::span<uint8_t, kSize> bytes() = 0;
  // Shows the page to the guest (true) or takes it away, so that reads exit
  // again (false). Returns false when that failed and nothing changed.
  virtual bool set_mapped(bool mapped) noexcept = 0;
};

}  // namespace ksbox::devices::virtio
