// Shared run state of one VM: who asked it to stop, and why. Device and vCPU
// threads report; the main thread waits on event_fd() and tears down.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "vmm/exit_status.h"
#include "vmm/unique_fd.h"

namespace ksbox {

class VmControl {
 public:
  VmControl();

  // The first request wins; later ones are ignored.
  void request_stop(ExitStatus status);
  // Guest asked for a reset (i8042 / reboot=k): a clean stop unless it panicked first.
  void guest_reset();
  // A kernel panic was printed; `ended` once its trace is complete.
  void guest_panic(const std::string& reason, bool ended);
  // The panic's grace period ran out: stop with its reason.
  void finish_panic();

  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  std::optional<ExitStatus> status() const;
  // When a panic was seen but its end was not: stop by this time anyway.
  std::optional<std::chrono::steady_clock::time_point> panic_deadline() const;
  // Readable once a stop was requested.
  int event_fd() const { return event_.get(); }

  static constexpr std::chrono::milliseconds kPanicGrace{2000};

  // Pausing the guest (its vCPUs) while the host reads what it wrote, so it
  // cannot change files under the reader. A lease: the pause ends by itself
  // at `until`, so a client that dies cannot leave the guest frozen.
  using Clock = std::chrono::steady_clock;
  // How to get every vCPU out of KVM_RUN (set by the machine).
  void set_vcpu_kicker(unsigned vcpus, std::function<void()> kick);
  // Pauses until `until` (or resume()); returns once every vCPU is parked,
  // false if that took longer than `wait` (the pause stays in force).
  bool pause_until(Clock::time_point until, std::chrono::milliseconds wait);
  void resume();
  // vCPU threads call this before each KVM_RUN: blocks while paused.
  void park_while_paused();


 private:
  mutable std::mutex mu_;
  std::atomic<bool> stopping_{false};
  std::optional<ExitStatus> status_;
  std::optional<std::string> panic_;
  std::optional<std::chrono::steady_clock::time_point> panic_deadline_;
  UniqueFd event_;

  std::condition_variable pause_cv_;
  std::optional<Clock::time_point> paused_until_;
  unsigned parked_ = 0;
  unsigned vcpus_ = 0;
  std::function<void()> kick_;
};

}  // namespace ksbox
