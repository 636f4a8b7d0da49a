#include "vmm/vm_control.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/error.h"

namespace ksbox {

VmControl::VmControl() : event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!event_) throw_errno("eventfd");
}

void VmControl::request_stop(ExitStatus status) {
  {
    std::lock_guard lock(mu_);
    if (status_) return;
    status_ = std::move(status);
    stopping_.store(true, std::memory_order_release);
  }
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(event_.get(), &one, sizeof one);
}

void VmControl::guest_reset() {
  std::optional<std::string> panic;
  {
    std::lock_guard lock(mu_);
    panic = panic_;
  }
  if (panic)
    request_stop({kExitGuestCrash, "guest kernel panic: " + *panic});
  else
    request_stop({kExitGuestReset, "guest requested a reset"});
}

void VmControl::guest_panic(const std::string& reason, bool ended) {
  {
    std::lock_guard lock(mu_);
    if (!panic_) {
      panic_ = reason;
      panic_deadline_ = std::chrono::steady_clock::now() + kPanicGrace;
    }
  }
  if (ended) request_stop({kExitGuestCrash, "guest kernel panic: " + reason});
}

void VmControl::finish_panic() {
  std::optional<std::string> panic;
  {
    std::lock_guard lock(mu_);
    panic = panic_;
  }
  if (panic) request_stop({kExitGuestCrash, "guest kernel panic: " + *panic});
}

std::optional<ExitStatus> VmControl::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

std::optional<std::chrono::steady_clock::time_point> VmControl::panic_deadline() const {
  std::lock_guard lock(mu_);
  return panic_deadline_;
}

}  // namespace ksbox
