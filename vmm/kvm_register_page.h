// A virtio-mmio register page shown to the guest as a read-only KVM memory
// slot over the device's window: guest reads are loads from this page, and
// guest writes still exit as MMIO (or end in an ioeventfd).
#pragma once

#include <cstdint>
#include <span>

#include "devices/virtio/register_page.h"
#include "vmm/kvm.h"
#include "vmm/mmap_region.h"

namespace ksbox {

class KvmRegisterPage final : public devices::virtio::RegisterPage {
 public:
  // `vm` must outlive the page; `slot` is a memory slot no one else uses.
  KvmRegisterPage(const Vm& vm, uint32_t slot, uint64_t guest_phys);

  std::span<uint8_t, kSize> bytes() override { return std::span<uint8_t, kSize>(page_.data(), kSize); }
  bool set_mapped(bool mapped) noexcept override;

 private:
  const Vm& vm_;
  const uint32_t slot_;
  const uint64_t guest_phys_;
  MmapRegion page_;
};

}  // namespace ksbox
