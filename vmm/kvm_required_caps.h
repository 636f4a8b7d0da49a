// The KVM capabilities ksbox-vmm cannot run without: checked when the VMM
// opens /dev/kvm and by `ksbox doctor`.
#pragma once

#include <linux/kvm.h>

#include <utility>

namespace ksbox {

inline constexpr std::pair<long, const char*> kRequiredKvmCaps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"}, {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},       {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"}, {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

}  // namespace ksbox
