#include "vmm/kvm_register_page.h"

#include <linux/kvm.h>
#include <sys/mman.h>

#include "vmm/error.h"

namespace ksbox {

KvmRegisterPage::KvmRegisterPage(const Vm& vm, uint32_t slot, uint64_t guest_phys)
    : vm_(vm), slot_(slot), guest_phys_(guest_phys), page_(MmapRegion::anonymous(kSize)) {}

bool KvmRegisterPage::set_mapped(bool mapped) noexcept {
  try {
    // A size of 0 deletes the slot.
    vm_.set_user_memory_region(slot_, guest_phys_, mapped ? kSize : 0, page_.data(),
                               mapped ? KVM_MEM_READONLY : 0);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace ksbox
