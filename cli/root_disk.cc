#include "cli/root_disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "cli/sandbox_commands.h"
#include "cli/tool_process.h"
#include "protocol/cmdline_words.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {
namespace {

// The ext4 superblock: 1024 bytes at offset 1024; the magic 0xEF53 (little
// endian) at 0x38, the 16-byte UUID at 0x68.
constexpr off_t kSuperblockOffset = 1024;
constexpr size_t kMagicOffset = 0x38;
constexpr size_t kUuidOffset = 0x68;

std::string format_uuid(const unsigned char* u) {
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += fmt::format("{:02x}", u[i]);
  }
  return out;
}

std::string fnv1a64(const unsigned char* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ data[i]) * 0x100000001b3ull;
  return fmt::format("{:016x}", h);
}

std::string what_persists() { return "installed packages, files in /home/sandbox and /etc"; }

}  // namespace

std::optional<BaseImageId> read_base_image_id(const fs::path& image, std::string* why) {
  const UniqueFd fd(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st{};
  if (!fd || ::fstat(fd.get(), &st) < 0) {
    *why = fmt::format("cannot read {}: {}", image.string(), std::strerror(errno));
    return std::nullopt;
  }
  std::array<unsigned char, 1024> sb{};
  const ssize_t n = ::pread(fd.get(), sb.data(), sb.size(), kSuperblockOffset);
  if (n != static_cast<ssize_t>(sb.size()) || sb[kMagicOffset] != 0x53 || sb[kMagicOffset + 1] != 0xEF) {
    *why = fmt::format("{} is not an ext4 image (no ext4 superblock)", image.string());
    return std::nullopt;
  }
  return BaseImageId{format_uuid(sb.data() + kUuidOffset), static_cast<uint64_t>(st.st_size),
                     fnv1a64(sb.data(), sb.size())};
}

std::optional<fs::path> find_mkfs_ext4(std::string* why) { return find_mkfs_ext4(std::getenv("PATH"), why); }

std::optional<fs::path> find_mkfs_ext4(const char* path_env, std::string* why) {
  constexpr const char* kMkfs = "mkfs.ext4";
  if (auto found = find_in_path(kMkfs, path_env)) return found;
  for (const char* dir : {"/usr/sbin", "/sbin"})
    if (auto found = find_in_path(kMkfs, dir)) return found;
  if (why) *why = "mkfs.ext4 not found (in $PATH, /usr/sbin, /sbin): install e2fsprogs";
  return std::nullopt;
}

void make_layer(const fs::path& mkfs, const fs::path& layer, uint64_t size) {
  const fs::path tmp = layer.string() + ".new";
  std::error_code ec;
  fs::remove(tmp, ec);
  {
    // Sparse from the start, and ours alone (mkfs would say it creates it).
    const UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) {
      const int e = errno;
      fs::remove(tmp, ec);
      throw Error(fmt::format("cannot make the sandbox's layer {}: {}", tmp.string(), std::strerror(e)));
    }
  }
  // No journal zeroing: a new sparse file reads as zeros already. mkfs
  // discards (punches) the file, so the inode tables need no zeroing either.
  const int status = run_tool(
      mkfs, {"-q", "-F", "-m", "0", "-L", "ksbox-layer", "-E", "lazy_journal_init=1", tmp.string()},
      /*stdout_to_stderr=*/true);
  if (status != 0) {
    fs::remove(tmp, ec);
    throw Error(fmt::format("{} could not make the sandbox's layer {} (status {})", mkfs.string(), tmp.string(),
                            status));
  }
  fs::rename(tmp, layer);
}

std::vector<std::string> root_disk_vmm_args(const fs::path& base, const fs::path& layer) {
  using namespace protocol;
  return {"--disk",
          fmt::format("{}:ro,serial={}", base.string(), kRootDiskSerial),
          "--disk",
          fmt::format("{},serial={}", layer.string(), kLayerDiskSerial),
          "--cmdline",
          fmt::format("{}{}{} {}{}{}", kRootParam, kSerialPrefix, kRootDiskSerial, kOverlayParam, kSerialPrefix,
                      kLayerDiskSerial)};
}

RootDiskPlan plan_root_disk(const SandboxPaths& p, const GuestImage& image, const RootDiskRequest& req,
                            SandboxRecord& rec) {
  RootDiskPlan plan;
  std::error_code ec;
  const bool have_layer = fs::exists(p.layer(), ec);
  const fs::path expected = image.dir / kGuestRootfsFile;
  if (req.kind == ImageKind::kInitramfs || (req.kind == ImageKind::kAuto && !image.rootfs)) {
    if (req.kind == ImageKind::kAuto)
      plan.notes.push_back(fmt::format(
          "no root file system image ({} is missing): booting the initramfs alone (busybox; no agent CLIs). "
          "`cmake --build build --target guest-rootfs` builds it (scripts/build.sh does); `ksbox doctor`",
          expected.string()));
    if (have_layer)
      plan.notes.push_back(fmt::format("the sandbox's layer ({}) is kept, unused on this boot", what_persists()));
    rec.image = "initramfs";
    return plan;
  }
  if (!image.rootfs)
    throw RootDiskError(kRunNoGuestImage,
                        fmt::format("--image rootfs: no root file system image: {} is missing or unreadable; "
                                    "`cmake --build build --target guest-rootfs` builds it",
                                    expected.string()));
  std::string why;
  const auto id = read_base_image_id(*image.rootfs, &why);
  if (!id) throw RootDiskError(kRunNoGuestImage, why);

  if (have_layer && rec.layer) {
    const LayerRecord& l = *rec.layer;
    if (l.base_uuid != id->uuid || l.base_size != id->size || l.base_fingerprint != id->fingerprint)
      throw RootDiskError(
          kRunImageChanged,
          fmt::format("the root image changed under sandbox {}'s layer: the layer was made over {} (ext4 UUID {}, "
                      "{} bytes, superblock {}), {} is now UUID {}, {} bytes, superblock {}. Its copied-up files would hide the new image's, so "
                      "it is not used.\n  `ksbox run --fresh` starts over on the new image (the layer — {} — "
                      "and the workspace clone are discarded; sync first); `--image initramfs` boots without it; "
                      "or point KSBOX_GUEST_DIR at the old image",
                      rec.name, l.base_path.string(), l.base_uuid, l.base_size, l.base_fingerprint,
                      image.rootfs->string(), id->uuid, id->size, id->fingerprint, what_persists()));
    if (req.disk_size_given && req.disk_size != l.size)
      plan.notes.push_back(fmt::format("the layer keeps its size {} (`ksbox run --fresh --disk-size {}` makes a new "
                                       "one, discarding it)",
                                       format_disk_size(l.size), format_disk_size(req.disk_size)));
  } else if (have_layer) {
    // Made, but the record was not written after it (interrupted run).
    rec.layer = LayerRecord{static_cast<uint64_t>(fs::file_size(p.layer(), ec)), id->uuid, id->size,
                            id->fingerprint, *image.rootfs};
  } else {
    if (rec.layer)
      plan.notes.push_back(fmt::format("{} is missing: making a new layer ({} start over)", p.layer().string(),
                                       what_persists()));
    const auto mkfs = find_mkfs_ext4(&why);
    if (!mkfs) throw RootDiskError(kRunNoGuestImage, why);
    make_layer(*mkfs, p.layer(), req.disk_size);
    rec.layer = LayerRecord{req.disk_size, id->uuid, id->size, id->fingerprint, *image.rootfs};
  }
  rec.image = "rootfs";
  plan.vmm_args = root_disk_vmm_args(*image.rootfs, p.layer());
  return plan;
}

}  // namespace ksbox::cli
