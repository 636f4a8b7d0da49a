// Where sandboxes live on the host: $XDG_STATE_HOME/ksbox/<name>/ (default
// ~/.local/state/ksbox/<name>/), one directory each. The list of sandboxes is
// the list of directories that hold a sandbox.json: no registry to corrupt.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vmm/unique_fd.h"

namespace ksbox::cli {

namespace fs = std::filesystem;

struct SandboxPaths {
  fs::path dir;
  fs::path record() const { return dir / "sandbox.json"; }
  fs::path workspace() const { return dir / "workspace"; }
  fs::path lock() const { return dir / "lock"; }
  fs::path pid_file() const { return dir / "vmm.pid"; }
  fs::path vsock() const { return dir / "vsock.sock"; }
  fs::path control() const { return dir / "ctl.sock"; }
  fs::path logs() const { return dir / "logs"; }
  fs::path console_log() const { return logs() / "console.log"; }
  fs::path vmm_log() const { return logs() / "vmm.log"; }
  fs::path egress_log() const { return logs() / "egress.log"; }  // filtered network only
  // The sandbox's writable layer over the shared root image (cli/root_disk.h).
  fs::path layer() const { return dir / "layer.ext4"; }
};

// The root image a layer was made over (cli/root_disk.h, BaseImageId).
struct LayerRecord {
  uint64_t size = 0;      // the layer's size in bytes (sparse)
  std::string base_uuid;  // the base's ext4 UUID
  uint64_t base_size = 0;
  std::string base_fingerprint;  // of its superblock
  fs::path base_path;            // where the base was then (for messages)
};

// What `ksbox run` decided when the sandbox was created; the config file may
// change later, the sandbox keeps these until --fresh.
struct SandboxRecord {
  std::string name;
  fs::path project;               // the git work tree's top directory on the host
  std::string workspace_mode;     // "clone" or "live"
  uint64_t memory_mib = 0;
  unsigned vcpus = 0;
  std::string network;            // off|user|filtered
  std::string sync_mode;          // manual|auto-commit|auto-idle
  int64_t created_unix = 0;
  std::string image;                 // what the last boot used: "rootfs", "initramfs" ("" before one)
  std::optional<LayerRecord> layer;  // set when layer.ext4 was made
  // The directory shared at /workspace: the clone, or the project itself.
  fs::path workspace_dir(const SandboxPaths& p) const {
    return workspace_mode == "live" ? project : p.workspace();
  }
};

// Throws Error naming the file when it is missing or malformed.
SandboxRecord read_record(const SandboxPaths& p);
// Atomically (temp file, fsync, rename).
void write_record(const SandboxPaths& p, const SandboxRecord& r);

// The sandbox of that name under state_dir() (cli/host_checks.h).
SandboxPaths sandbox_paths(const std::string& name);

// Names of every sandbox, sorted.
std::vector<std::string> list_sandbox_names();

// The sandbox's lock, taken without waiting; nullopt while another process
// (its VMM, or a CLI setting it up) holds it. The file is created if needed.
std::optional<UniqueFd> try_lock(const SandboxPaths& p);

// The top of the git work tree that holds `start` (a directory with a
// .git entry), or nullopt.
std::optional<fs::path> find_git_root(const fs::path& start);

}  // namespace ksbox::cli
