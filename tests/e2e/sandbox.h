// A running guest for exec tests: ksbox-vmm with the test guest image, its
// vsock on a Unix socket in a fresh temp directory and ksbox-agent serving
// execs; plus the `ksbox` CLI pointed at it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/background.h"
#include "tests/e2e/process.h"

namespace ksbox::test {

struct SandboxOptions {
  unsigned vcpus = 2;
  unsigned memory_mib = 512;
  std::vector<std::string> vmm_args;  // extra ksbox-vmm arguments
  std::string cmdline;                // extra kernel command-line words
  std::string initramfs = "initramfs.cpio.gz";  // in the guest image directory
  // Share <dir>/workspace with the guest as the tag "workspace" (the agent
  // mounts it on /workspace); ":ro" appended when read-only.
  bool workspace = false;
  bool workspace_read_only = false;
  // When nonzero, the VMM runs with RLIMIT_NOFILE N (soft and hard) and
  // without CAP_SYS_RESOURCE, so it cannot raise the limit again.
  unsigned fd_limit = 0;
};

std::string cli_path();
// `ksbox ARGS...` (the CLI by sandbox name, with the test's environment).
ProcessResult run_ksbox(std::vector<std::string> args, std::chrono::seconds timeout);

class Sandbox {
 public:
  // Starts the VMM; does not wait for the agent (the CLI's connect retries do).
  explicit Sandbox(const SandboxOptions& opts = {});
  ~Sandbox();  // kills the VMM if it still runs and removes the temp directory

  const std::string& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  std::string workspace() const { return dir_ + "/workspace"; }
  // argv of `ksbox exec --socket S OPTIONS... -- CMD...`.
  std::vector<std::string> exec_argv(const std::vector<std::string>& cmd,
                                     const std::vector<std::string>& options = {}) const;
  ProcessResult exec(const std::vector<std::string>& cmd, const std::vector<std::string>& options = {},
                     const ProcessOptions& popts = {}) const;
  // Runs `bash -c SCRIPT` on the host with $KSBOX set to "ksbox exec --socket S"
  // (for pipelines such as `$KSBOX -- cat f | sha256sum`).
  ProcessResult host_sh(const std::string& script, const ProcessOptions& popts = {}) const;
  // `ksbox stop`, then the VMM's exit code (nullopt if it did not exit in time).
  std::optional<int> stop(std::chrono::seconds timeout = std::chrono::seconds(60));
  BackgroundProcess& vmm() { return *vmm_; }
  std::string console() const;  // the guest's console log so far
  std::string describe(const ProcessResult& r) const;  // r plus the console's tail

 private:
  std::string dir_, socket_, console_;
  std::unique_ptr<BackgroundProcess> vmm_;
};

}  // namespace ksbox::test
