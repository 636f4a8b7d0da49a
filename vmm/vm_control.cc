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
  pause_cv_.notify_all();  // parked vCPUs leave
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

void VmControl::set_vcpu_kicker(unsigned vcpus, std::function<void()> kick) {
  std::lock_guard lock(mu_);
  vcpus_ = vcpus;
  kick_ = std::move(kick);
}

bool VmControl::pause_until(Clock::time_point until, std::chrono::milliseconds wait) {
  std::function<void()> kick;
  {
    std::lock_guard lock(mu_);
    paused_until_ = until;
    kick = kick_;
  }
  if (kick) kick();
  std::unique_lock lock(mu_);
  return pause_cv_.wait_for(lock, wait, [&] { return parked_ >= vcpus_ || stopping(); });
}

void VmControl::resume() {
  {
    std::lock_guard lock(mu_);
    paused_until_.reset();
  }
  pause_cv_.notify_all();
}

void VmControl::park_while_paused() {
  std::unique_lock lock(mu_);
  if (!paused_until_) return;
  ++parked_;
  pause_cv_.notify_all();  // pause_until() counts us
  while (paused_until_ && !stopping() && Clock::now() < *paused_until_)
    pause_cv_.wait_until(lock, *paused_until_);
  if (paused_until_ && Clock::now() >= *paused_until_) paused_until_.reset();  // the lease ran out
  --parked_;
}

}  // namespace ksbox
