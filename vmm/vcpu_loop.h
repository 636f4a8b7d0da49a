// The KVM_RUN loop of one vCPU thread: dispatches port and MMIO exits to the
// buses and turns fatal exits into a stop request with a one-line reason.
#pragma once

#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/vm_control.h"

namespace ksbox {

// Runs until `ctl` is stopping. Another thread interrupts KVM_RUN by setting
// run_data()->immediate_exit and sending kVcpuKickSignal to this thread.
void run_vcpu(const Vcpu& vcpu, Bus& pio, Bus& mmio, VmControl& ctl);

// Installs a no-op handler for the kick signal (once per process).
void install_vcpu_kick_handler();
int vcpu_kick_signal();

}  // namespace ksbox
