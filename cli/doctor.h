// `ksbox doctor`: one line per thing ksbox needs from the host, each with a
// fix when it is missing.
#pragma once

#include <sys/resource.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace ksbox::cli {

// warn: ksbox works, but worse (e.g. no io_uring: slower shares).
enum class CheckStatus { kOk, kWarn, kFail };

struct CheckResult {
  std::string check;   // "kvm", "guest-image", "root-image", "ksbox-vmm", "ksbox-git", "state-dir", "fd-limit", "io_uring"
  CheckStatus status = CheckStatus::kOk;
  std::string detail;  // what was found, or what is wrong
  std::string fix;     // empty when ok
};

// The checks, in the order printed.
std::vector<CheckResult> run_host_checks();

// The single checks that take their inputs (for tests).
CheckResult check_state_dir(const std::filesystem::path& dir);
CheckResult check_fd_limit(const rlimit& limit);
CheckResult check_io_uring();

// Text: "ok   kvm: /dev/kvm usable (API 12)", "FAIL kvm: ... — fix: ...",
// one line each. JSON: [{"check", "ok", "status", "detail", "fix"}] where
// ok is false only for a failure and fix is null when there is none.
std::string format_checks(const std::vector<CheckResult>& results, bool json);

// Prints the checks; returns 0 when none failed, 1 otherwise.
int run_doctor_command(bool json, std::ostream& out = std::cout);

}  // namespace ksbox::cli
