// The sandbox lifecycle commands: run, stop, status, list, destroy, logs,
// and name resolution for exec/attach/sync. Each returns ksbox's exit status
// and prints "ksbox: ..." messages on stderr.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/config.h"
#include "cli/sandbox_store.h"

namespace ksbox::cli {

// `ksbox run` exit statuses (after the command's own when one ran).
inline constexpr int kRunNotGitRepo = 1;
inline constexpr int kRunAlreadyRunning = 2;
inline constexpr int kRunNoGuestImage = 3;
inline constexpr int kRunNoKvm = 4;
inline constexpr int kRunBootFailed = 5;
inline constexpr int kRunBadConfig = 6;  // a bad config value or name
inline constexpr int kRunImageChanged = 7;  // the root image is not the one the sandbox's layer was made over

struct RunOptions {
  std::filesystem::path path = ".";
  std::string name;
  std::optional<uint64_t> memory_mib;
  std::optional<unsigned> vcpus;
  std::string network;    // "" = from the config
  std::string sync_mode;  // "" = from the config
  std::string workspace;  // "" = from the config; "clone" or "live"
  std::string image;      // "" = from the config; "auto", "rootfs" or "initramfs"
  std::string disk_size;  // "" = from the config; the writable layer's size when it is made ("8G")
  bool fresh = false;
  bool no_attach = false;
  std::vector<std::string> env;      // --env NAME[=VALUE]
  std::vector<std::string> publish;  // --publish [HOSTIP:]HOSTPORT:GUESTPORT, for this boot
  std::vector<std::string> command;  // after --: run it instead of a shell
  double boot_timeout_s = 120;
};
int run_sandbox(const RunOptions& o);

// The project's config file under the command line's choices (name,
// resources, modes); throws ConfigError naming the bad key or option.
SandboxConfig resolve_config(const std::filesystem::path& project_root, const RunOptions& o);

// NAME, or the sandbox of the git project that holds the current directory.
// Throws Error ("no sandbox ...") when neither gives one.
std::string resolve_sandbox_name(const std::optional<std::string>& name);

int stop_command(const std::optional<std::string>& name, bool sync, double timeout_s);
int status_command(const std::optional<std::string>& name, bool json);
int list_command(bool json);
int destroy_command(const std::string& name, bool force);
// egress: the egress log (filtered network) instead of the VMM log and console.
int logs_command(const std::optional<std::string>& name, bool follow, bool egress);

// Commands in a sandbox run as its user `sandbox` (the guest image's
// 1000:1000, the owner of /workspace) unless -u says otherwise.
inline constexpr uint32_t kSandboxUid = 1000;
inline constexpr uint32_t kSandboxGid = 1000;

// The host variables that go with each exec in this sandbox: the project
// config's env and the agents' keys, plus `extra` (-e values), resolved.
std::vector<std::string> sandbox_exec_env(const SandboxRecord& rec, const std::vector<std::string>& extra);

}  // namespace ksbox::cli
