// Supervising one sandbox's ksbox-vmm: start it detached, tell whether it
// runs (lock + pid file + start time + control socket), stop it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/sandbox_store.h"
#include "vmm/pid_file.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {

enum class SandboxState { kStopped, kStarting, kRunning, kCrashed };
std::string_view to_string(SandboxState s);

struct SandboxProbe {
  SandboxState state = SandboxState::kStopped;
  std::optional<PidRecord> vmm;          // running: the verified VMM
  std::optional<nlohmann::json> status;  // running: its control socket's answer
};

// The process recorded in a pid file (vmm/pid_file.h), if it is alive and
// the same one (same start time: not a later process that reused the pid).
std::optional<PidRecord> live_process(const fs::path& pid_file);
// A pidfd for `pid` (invalid on failure): readable once the process ends.
UniqueFd open_pidfd(pid_t pid);

// Never takes the lock for longer than the probe.
SandboxProbe probe_sandbox(const SandboxPaths& p);

// One request to a control socket; nullopt when nobody answers in time.
std::optional<nlohmann::json> control_request(const fs::path& socket, std::string_view cmd,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The same with a request object ({"cmd": ..., ...}).
std::optional<nlohmann::json> control_call(const fs::path& socket, const nlohmann::json& request,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Runs `fn` while the sandbox's guest is paused, so that the guest cannot
// change its files while the host reads them (sync, auto-commit); resumes
// afterwards (the pause is a lease, so it also ends if we die). When no VMM
// runs, `fn` just runs. Throws Error if a running guest cannot be paused.
int with_guest_paused(const SandboxPaths& p, const std::function<int()>& fn);

// Removes what a VMM that is gone left behind: its pid file and sockets.
// Call only while holding the sandbox's lock.
void remove_stale_runtime(const SandboxPaths& p);

struct VmmLaunch {
  fs::path vmm;                   // ksbox-vmm
  std::vector<std::string> args;  // after argv[0]
};

// Starts the VMM in a session of its own (no terminal, stdin /dev/null,
// stdout and stderr appended to logs/vmm.log), handing it `lock`, which it
// holds until it exits. Returns its pid; throws Error if it cannot be run.
pid_t spawn_vmm(const SandboxPaths& p, const VmmLaunch& launch, const UniqueFd& lock);

// Waits until the guest agent accepts a connection. Throws Error with the
// tail of the logs if the VMM exits first or the timeout passes.
void wait_until_ready(const SandboxPaths& p, pid_t vmm, std::chrono::milliseconds timeout);

// Stops a running sandbox: the agent powers the guest off; failing that
// within `grace`, the control socket's hard stop; failing that, SIGKILL.
// Returns how it ended ("powered off", "stopped", "killed"). Waits until
// the VMM is gone and its runtime files are removed.
std::string stop_sandbox(const SandboxPaths& p, std::chrono::milliseconds grace);

// The last `lines` lines of a log file ("" if missing).
std::string log_tail(const fs::path& file, size_t lines);

}  // namespace ksbox::cli
