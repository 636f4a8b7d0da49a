// Boots the test guest (build/guest) under ksbox-vmm and reads what its init
// printed (see guest-image/initramfs/init for the console contract).
#pragma once

#include <string>
#include <vector>

#include "tests/e2e/process.h"

namespace ksbox::test {

struct BootOptions {
  std::string kernel = "vmlinux";  // or "bzImage", or an absolute path
  std::string cmd;                 // ksbox_cmd; empty = none
  std::string then;                // ksbox_then; empty = init's default
  std::string extra_cmdline = "quiet";
  std::vector<std::string> vmm_args;  // e.g. {"--vcpus", "2"}
};

std::string guest_file(const std::string& name);  // path inside build/guest
// Why a guest test cannot run here (no usable /dev/kvm, `initramfs` not
// built), or "" when it can.
std::string guest_test_blocker(const std::string& initramfs);
std::string vmm_path();
ProcessResult boot(const BootOptions& opts, const ProcessOptions& popts = {});

// The output of ksbox_cmd: the console lines between cmd-begin and cmd-end,
// with the serial line's CRs removed. Empty if the markers are missing.
std::string cmd_output(const std::string& console);
// The status printed in "ksbox-init: cmd-end status=N", or -1.
int cmd_status(const std::string& console);
// A one-paragraph summary of a run for assertion messages.
std::string describe(const ProcessResult& r);

}  // namespace ksbox::test
