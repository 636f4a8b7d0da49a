#include "vmm/vcpu_loop.h"

#include <unistd.h>

#include <csignal>
#include <cstring>
#include <span>

#include <fmt/format.h>

namespace ksbox {
namespace {

void on_kick(int) {}

std::string internal_error_reason(const kvm_run& run, unsigned long vcpu_id) {
  const char* what = "unknown";
  switch (run.internal.suberror) {
    case KVM_INTERNAL_ERROR_EMULATION: what = "instruction emulation failed"; break;
    case KVM_INTERNAL_ERROR_SIMUL_EX: what = "exception while delivering an exception"; break;
    case KVM_INTERNAL_ERROR_DELIVERY_EV: what = "event delivery failed"; break;
    default: break;
  }
  // kvm-pvm serves /dev/kvm on hosts without hardware virtualization, but
  // its emulator lacks instructions every x86_64 kernel uses.
  const char* hint = ::access("/sys/module/kvm_pvm", F_OK) == 0
                         ? "; this host's /dev/kvm is kvm-pvm, which cannot run an unmodified guest kernel: "
                           "use tests/nested/run"
                         : "";
  return fmt::format("KVM internal error {} ({}) on vCPU {}{}", run.internal.suberror, what, vcpu_id, hint);
}

// Returns false when the guest's exit was fatal (ctl was told why).
bool handle_exit(const Vcpu& vcpu, Bus& pio, Bus& mmio, VmControl& ctl, size_t run_size) {
  kvm_run& run = *vcpu.run_data();
  switch (run.exit_reason) {
    case KVM_EXIT_IO: {
      const uint64_t bytes = uint64_t{run.io.size} * run.io.count;
      if (run.io.data_offset > run_size || bytes > run_size - run.io.data_offset) {
        ctl.request_stop({kExitGuestCrash, "KVM reported port I/O outside the run area"});
        return false;
      }
      auto* data = reinterpret_cast<uint8_t*>(&run) + run.io.data_offset;
      for (uint32_t i = 0; i < run.io.count; ++i, data += run.io.size) {
        if (run.io.direction == KVM_EXIT_IO_OUT)
          pio.write(run.io.port, std::span<const uint8_t>(data, run.io.size));
        else
          pio.read(run.io.port, std::span<uint8_t>(data, run.io.size));
      }
      return true;
    }
    case KVM_EXIT_MMIO: {
      const auto len = std::min<uint32_t>(run.mmio.len, sizeof run.mmio.data);
      if (run.mmio.is_write)
        mmio.write(run.mmio.phys_addr, std::span<const uint8_t>(run.mmio.data, len));
      else
        mmio.read(run.mmio.phys_addr, std::span<uint8_t>(run.mmio.data, len));
      return true;
    }
    case KVM_EXIT_HLT:
    case KVM_EXIT_INTR:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return true;
    case KVM_EXIT_SHUTDOWN:
      ctl.request_stop({kExitGuestCrash, fmt::format("guest triple fault on vCPU {}", vcpu.id())});
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      if (run.system_event.type == KVM_SYSTEM_EVENT_CRASH) {
        ctl.request_stop({kExitGuestCrash, "guest reported a crash"});
      } else {
        ctl.guest_reset();
      }
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      ctl.request_stop({kExitGuestCrash, internal_error_reason(run, vcpu.id())});
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      ctl.request_stop({kExitGuestCrash, fmt::format("VM entry failed on vCPU {} (hardware reason {:#x})",
                                                     vcpu.id(),
                                                     run.fail_entry.hardware_entry_failure_reason)});
      return false;
    default:
      ctl.request_stop({kExitGuestCrash, fmt::format("unexpected KVM exit reason {} on vCPU {}",
                                                     run.exit_reason, vcpu.id())});
      return false;
  }
}

}  // namespace

int vcpu_kick_signal() { return SIGUSR1; }

void install_vcpu_kick_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_kick;  // no SA_RESTART: KVM_RUN must return EINTR
  sigemptyset(&sa.sa_mask);
  ::sigaction(vcpu_kick_signal(), &sa, nullptr);
}

void run_vcpu(const Vcpu& vcpu, Bus& pio, Bus& mmio, VmControl& ctl) {
  const size_t run_size = vcpu.run_size();
  while (!ctl.stopping()) {
    ctl.park_while_paused();
    if (ctl.stopping()) return;
    const int r = vcpu.run();
    if (r == -EINTR || r == -EAGAIN) {
      vcpu.run_data()->immediate_exit = 0;
      continue;
    }
    if (r < 0) {
      ctl.request_stop({kExitGuestCrash, fmt::format("KVM_RUN failed on vCPU {}: {}", vcpu.id(),
                                                     std::strerror(-r))});
      return;
    }
    if (!handle_exit(vcpu, pio, mmio, ctl, run_size)) return;
  }
}

}  // namespace ksbox
