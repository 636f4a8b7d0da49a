// The kernel command line: the VMM's defaults, the user's words, and the
// arguments that describe our devices.
#pragma once

#include <string>
#include <vector>

namespace ksbox {

// Defaults come first so the user's parameters override them; device
// arguments go before any "--" (after which words belong to init).
std::string compose_cmdline(const std::string& user, const std::vector<std::string>& device_args);

inline constexpr const char* kDefaultCmdline = "console=ttyS0 reboot=k panic=1";

}  // namespace ksbox
