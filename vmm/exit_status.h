// ksbox-vmm's exit codes: part of its interface.
#pragma once

#include <string>

namespace ksbox {

inline constexpr int kExitGuestReset = 0;   // the guest rebooted or powered off
inline constexpr int kExitSetupError = 1;   // bad arguments or host setup failure
inline constexpr int kExitUsage = 2;        // command-line syntax
inline constexpr int kExitGuestCrash = 3;   // panic, triple fault, KVM internal error
inline constexpr int kExitSignalBase = 128; // ended by SIGINT/SIGTERM/SIGHUP: 128+N

struct ExitStatus {
  int code;
  std::string reason;  // one line, shown on stderr when code != 0
};

}  // namespace ksbox
