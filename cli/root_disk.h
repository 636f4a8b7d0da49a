// A sandbox's root disk: the Debian image every sandbox shares read-only
// (rootfs.ext4 next to the guest kernel, built by guest-image/rootfs/) under
// the sandbox's own writable layer (layer.ext4 in its state directory, a
// sparse ext4 file made with mkfs.ext4 on the first boot). The agent overlays
// the two (guest-image/agent/root_disk.h), so installed packages and files
// in the home directory persist across stop/start until `ksbox run --fresh`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/config.h"
#include "cli/host_checks.h"
#include "cli/sandbox_store.h"
#include "vmm/error.h"

namespace ksbox::cli {

// Which base image a layer was made over: the ext4 UUID in its superblock
// (mkfs picks one at random, so a rebuilt image has a new one), the file's
// size, and a fingerprint of the whole superblock (free block and inode
// counts among it: another content differs there even where a reproducible
// build fixed the UUID). One 1 KiB read, not a checksum of the whole image;
// the base is never written, so its superblock never changes.
struct BaseImageId {
  std::string uuid;  // 8-4-4-4-12 lower-case hex
  uint64_t size = 0;
  std::string fingerprint;  // FNV-1a 64 of the 1024-byte superblock, 16 hex digits
};
// nullopt with *why when the file cannot be read or is not ext4.
std::optional<BaseImageId> read_base_image_id(const std::filesystem::path& image, std::string* why);

// mkfs.ext4 (e2fsprogs): in $PATH, else /usr/sbin or /sbin (not on a Debian
// user's PATH). nullopt with *why (if given) when there is none.
std::optional<std::filesystem::path> find_mkfs_ext4(std::string* why = nullptr);
std::optional<std::filesystem::path> find_mkfs_ext4(const char* path_env, std::string* why);

// Makes `layer` a new sparse ext4 file of `size` bytes (mkfs.ext4 on a temp
// file beside it, then a rename: no half-made layer is ever taken for one).
// Throws Error when mkfs fails.
void make_layer(const std::filesystem::path& mkfs, const std::filesystem::path& layer, uint64_t size);

// ksbox-vmm's arguments for booting from `base` (read-only) and `layer`:
// the disks and the kernel command-line words that name them by serial.
std::vector<std::string> root_disk_vmm_args(const std::filesystem::path& base, const std::filesystem::path& layer);

// A reason not to boot, with `ksbox run`'s exit status for it.
class RootDiskError : public Error {
 public:
  RootDiskError(int exit_status, const std::string& message) : Error(message), exit_status_(exit_status) {}
  int exit_status() const { return exit_status_; }

 private:
  int exit_status_;
};

struct RootDiskRequest {
  ImageKind kind = ImageKind::kAuto;  // auto: the root disk when the image has a rootfs
  uint64_t disk_size = kDefaultDiskSize;
  bool disk_size_given = false;  // by a flag or the config (a note when the layer differs)
};

struct RootDiskPlan {
  std::vector<std::string> vmm_args;  // empty: the initramfs alone
  std::vector<std::string> notes;     // for the user, one line each
};

// Decides between the root disk and the initramfs, checks that an existing
// layer was made over the image there now (RootDiskError with
// kRunImageChanged otherwise: its copied-up files, dpkg's status among them,
// would hide the new base's), and makes the layer when there is none.
// Updates rec.image and rec.layer; the caller writes the record.
RootDiskPlan plan_root_disk(const SandboxPaths& p, const GuestImage& image, const RootDiskRequest& req,
                            SandboxRecord& rec);

}  // namespace ksbox::cli
