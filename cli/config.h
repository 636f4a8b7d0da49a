// A sandbox's configuration: the project file <project>/.ksbox.json, its
// validation, and the sizing of resources to the host. Precedence (CLI flags
// over the file over these defaults) is the caller's: it parses the file,
// then overwrites the fields the user gave on the command line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/error.h"

namespace ksbox::cli {

// A bad config file or value; the message names the file and the key, as in
// ".ksbox.json: hooks.pre_up[1]: expected a string".
class ConfigError : public Error {
 public:
  using Error::Error;
};

enum class NetworkMode { kOff, kUser, kFiltered };
enum class SyncMode { kManual, kAutoCommit, kAutoIdle };
enum class WorkspaceMode { kClone, kLive };  // live: share the project dir itself, read-write
// What the guest boots: the Debian root disk when the image is there (auto),
// always it (rootfs: an error without it), or the initramfs alone.
enum class ImageKind { kAuto, kRootfs, kInitramfs };

// An extra virtio-fs share besides the workspace.
struct ShareSpec {
  std::string tag;       // [a-z0-9][a-z0-9._-]*, at most 36 bytes, not "workspace"
  std::string host_dir;  // absolute, or relative to the project root (share_host_dir)
  bool read_only = false;
  bool operator==(const ShareSpec&) const = default;
};

// Host commands (each a /bin/sh -c line) run in the project directory.
struct Hooks {
  std::vector<std::string> pre_up, post_up, pre_down, post_down;
  bool operator==(const Hooks&) const = default;
};

struct SandboxConfig {
  std::string name;                    // [a-z0-9][a-z0-9._-]{0,62}
  std::optional<uint64_t> memory_mib;  // nullopt = sized to the host
  std::optional<unsigned> vcpus;       // nullopt = sized to the host
  NetworkMode network = NetworkMode::kUser;
  std::vector<std::string> allow;  // filtered-mode allowlist: domain suffixes
  std::vector<std::string> env;    // names of host variables forwarded with each exec
  bool forward_agent_keys = true;  // agent_key_names() are forwarded when set
  std::vector<ShareSpec> shares;   // extra shares besides the workspace
  SyncMode sync_mode = SyncMode::kManual;
  unsigned idle_seconds = 300;  // auto-idle: how long the workspace must be quiet
  WorkspaceMode workspace = WorkspaceMode::kClone;
  ImageKind image = ImageKind::kAuto;
  std::optional<uint64_t> disk_size;  // bytes of the writable layer; nullopt = kDefaultDiskSize
  std::optional<std::string> git_name, git_email;  // identity of guest commits (default: the host's)
  Hooks hooks;
  bool operator==(const SandboxConfig&) const = default;
};

inline constexpr const char* kConfigFileName = ".ksbox.json";
inline constexpr uint64_t kMinMemoryMiB = 256;
// The writable layer is a sparse file: its size is a limit, not an allocation.
inline constexpr uint64_t kDefaultDiskSize = uint64_t{8} << 30;
inline constexpr uint64_t kMinDiskSize = uint64_t{256} << 20;
inline constexpr uint64_t kMaxDiskSize = uint64_t{16} << 40;
inline constexpr unsigned kMaxIdleSeconds = 7 * 24 * 3600;
// The tag of the workspace share (the agent mounts it at /workspace).
inline constexpr std::string_view kWorkspaceTag = "workspace";

// Parses a config file's text. Absent keys keep their defaults (name stays
// empty: see default_name_for); `null` is accepted for the optional keys.
// JSON comments are allowed. Unknown keys and bad values throw ConfigError
// whose message starts with "<source_name>: <key>: ".
SandboxConfig parse_config(std::string_view json_text, std::string_view source_name);

// Checks the values of a config filled by other means (command-line flags
// over a parsed file): the rules parse_config applies, with the same
// "<source_name>: <key>: ..." messages. Host limits are resolve_resources's.
void validate_config(const SandboxConfig& config, std::string_view source_name);

// Reads <project_root>/.ksbox.json; nullopt when there is none. Throws
// ConfigError when it cannot be read or is invalid.
std::optional<SandboxConfig> load_project_config(const std::filesystem::path& project_root);

// Every key, optional ones as null: the text parse_config turns back into an
// equal config. indent < 0 gives one line.
std::string to_json(const SandboxConfig& config, int indent = 2);

// The project directory's base name made into a valid name: lowercased,
// other characters turned into '-', trimmed to 63; "sandbox" if nothing is
// left.
std::string default_name_for(const std::filesystem::path& project_root);
// Throws ConfigError unless `name` matches [a-z0-9][a-z0-9._-]{0,62}.
void validate_name(std::string_view name);

// A share's host directory: relative ones are taken from the project root.
std::filesystem::path share_host_dir(const ShareSpec& share, const std::filesystem::path& project_root);

// The agents' keys forwarded when forward_agent_keys is on.
const std::vector<std::string>& agent_key_names();
// config.env, then the agent keys when forwarded, without duplicates: the
// names whose host values go with each exec.
std::vector<std::string> forwarded_env_names(const SandboxConfig& config);

// Resources: an unset value is sized to the host, a set one is checked
// against the minimums and the host (ConfigError naming the key):
//   memory_mib: default min(clamp(host/4, 1024, 8192), host/2); at least
//               256, at most the host's memory.
//   vcpus:      default clamp(host_cpus/2, 1, 8); at least 1, at most the
//               host's CPUs.
struct Resources {
  uint64_t memory_mib;
  unsigned vcpus;
  bool operator==(const Resources&) const = default;
};
Resources resolve_resources(const SandboxConfig& config, uint64_t host_memory_mib, unsigned host_cpus);

std::string_view to_string(NetworkMode mode);  // "off", "user", "filtered"
std::string_view to_string(SyncMode mode);     // "manual", "auto-commit", "auto-idle"
std::string_view to_string(WorkspaceMode mode);  // "clone", "live"
std::string_view to_string(ImageKind kind);      // "auto", "rootfs", "initramfs"
std::optional<NetworkMode> parse_network_mode(std::string_view text);
std::optional<SyncMode> parse_sync_mode(std::string_view text);
std::optional<WorkspaceMode> parse_workspace_mode(std::string_view text);
std::optional<ImageKind> parse_image_kind(std::string_view text);

// A disk size: a whole number with a binary unit suffix M, G or T ("8G",
// "512M"; "MiB"/"GiB"/"TiB" and lower case also taken). nullopt when it is
// not one; the range (kMinDiskSize..kMaxDiskSize) is check_values's.
std::optional<uint64_t> parse_disk_size(std::string_view text);
// "2T" or "8G" when whole TiB or GiB, else "NM".
std::string format_disk_size(uint64_t bytes);

}  // namespace ksbox::cli
