#include "root_disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/magic.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "log.h"
#include "protocol/cmdline_words.h"
#include "vmm/unique_fd.h"

namespace ksbox::agent {
namespace {

// Where the layers are mounted in the initramfs before the switch. They stay
// mounted (unreachable from the new root); the kernel keeps them alive.
constexpr const char* kBaseDir = "/.ksbox/base";
constexpr const char* kLayerDir = "/.ksbox/layer";
constexpr const char* kNewRoot = "/.ksbox/root";
using protocol::kOverlayParam;
using protocol::kRootParam;
using protocol::kSerialPrefix;

constexpr std::string_view kDevPrefix = "/dev/";
// VIRTIO_BLK_ID_BYTES: the longest serial a virtio-blk disk reports.
constexpr size_t kMaxSerialBytes = 20;

bool name_chars(std::string_view s, bool allow_dot) {
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || (allow_dot && c == '.');
    if (!ok) return false;
  }
  return true;
}

bool valid_device_name(std::string_view name) { return !name.empty() && name.size() <= 32 && name_chars(name, false); }

bool valid_serial(std::string_view id) { return !id.empty() && id.size() <= kMaxSerialBytes && name_chars(id, true); }

// "/dev/NAME" or "serial:ID".
bool valid_disk_spec(std::string_view v) {
  if (v.starts_with(kDevPrefix)) return valid_device_name(v.substr(kDevPrefix.size()));
  if (v.starts_with(kSerialPrefix)) return valid_serial(v.substr(kSerialPrefix.size()));
  return false;
}

// The first `max` bytes of a small (sysfs) file, trailing newline removed;
// nullopt when it cannot be read.
std::optional<std::string> read_small_file(const std::string& path, size_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string out(max, '\0');
  const ssize_t n = ::read(fd.get(), out.data(), out.size());
  if (n < 0) return std::nullopt;
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

bool is_block_device(const std::string& dev) {
  struct stat st {};
  return ::stat(dev.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

// The device node of a disk spec. virtio-blk probes before init runs, but
// give a late device a moment.
std::optional<std::string> resolve_disk(const std::string& spec) {
  using namespace std::chrono_literals;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::string error;
  for (;;) {
    std::optional<std::string> dev;
    if (spec.starts_with(kSerialPrefix))
      dev = find_disk_by_serial(std::string_view(spec).substr(kSerialPrefix.size()), "/sys/block", &error);
    else
      dev = spec;
    if (dev && is_block_device(*dev)) return dev;
    if (dev) error = fmt::format("{} is not a block device", *dev);
    if (std::chrono::steady_clock::now() >= deadline) {
      log("root disk: {}: {} (is there a --disk for it?)", spec, error);
      return std::nullopt;
    }
    std::this_thread::sleep_for(20ms);
  }
}

// Mounts made so far, undone in reverse if a later step fails.
class Mounts {
 public:
  ~Mounts() {
    for (auto it = done_.rbegin(); it != done_.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
  }
  bool mount(const char* source, const std::string& target, const char* type, unsigned long flags,
             const char* data) {
    if (::mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) {
      log("root disk: mkdir {}: {}", target, std::strerror(errno));
      return false;
    }
    if (::mount(source, target.c_str(), type, flags, data) < 0) {
      log("root disk: mount {} ({}) on {}: {}", source, type, target, std::strerror(errno));
      return false;
    }
    done_.push_back(target);
    return true;
  }
  void keep() { done_.clear(); }

 private:
  std::vector<std::string> done_;
};

}  // namespace

std::optional<RootDisk> parse_root_disk(std::string_view cmdline, std::string* error) {
  error->clear();
  const auto base = protocol::last_param(cmdline, kRootParam);
  const auto overlay = protocol::last_param(cmdline, kOverlayParam);
  if (!base) {
    if (overlay) *error = "ksbox.overlay= without ksbox.root=";
    return std::nullopt;
  }
  for (const auto& [key, value] : {std::pair{kRootParam, base}, std::pair{kOverlayParam, overlay}}) {
    if (value && !valid_disk_spec(*value)) {
      *error = fmt::format("{}'{}' is neither /dev/NAME nor serial:ID", key, value->substr(0, 64));
      return std::nullopt;
    }
  }
  if (overlay && *overlay == *base) {
    *error = fmt::format("{} and {} name the same disk", kRootParam, kOverlayParam);
    return std::nullopt;
  }
  return RootDisk{.base = std::string(*base), .overlay = std::string(overlay.value_or(""))};
}

std::optional<std::string> find_disk_by_serial(std::string_view serial, const std::string& sys_block,
                                               std::string* error) {
  error->clear();
  DIR* d = ::opendir(sys_block.c_str());
  if (!d) {
    *error = fmt::format("cannot list {}: {}", sys_block, std::strerror(errno));
    return std::nullopt;
  }
  std::vector<std::string> found;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (!valid_device_name(name)) continue;  // also skips "." and ".."
    const auto id = read_small_file(sys_block + "/" + std::string(name) + "/serial", 64);
    if (id && *id == serial) found.emplace_back(name);
  }
  ::closedir(d);
  if (found.size() == 1) return std::string(kDevPrefix) + found[0];
  *error = found.empty() ? fmt::format("no disk has the serial '{}'", serial)
                         : fmt::format("{} disks have the serial '{}' ({}, {})", found.size(), serial, found[0],
                                       found[1]);
  return std::nullopt;
}

bool root_is_overlay() {
  struct statfs st {};
  return ::statfs("/", &st) == 0 && st.f_type == OVERLAYFS_SUPER_MAGIC;
}

bool switch_to_root_disk(const RootDisk& disk) {
  const auto base = resolve_disk(disk.base);
  if (!base) return false;
  const bool persistent = !disk.overlay.empty();
  std::string layer;
  if (persistent) {
    const auto dev = resolve_disk(disk.overlay);
    if (!dev) return false;
    layer = *dev;
    struct stat a {}, b {};
    if (::stat(base->c_str(), &a) == 0 && ::stat(layer.c_str(), &b) == 0 && a.st_rdev == b.st_rdev) {
      log("root disk: {} and {} are the same disk ({})", disk.base, disk.overlay, layer);
      return false;
    }
  }
  ::mkdir("/.ksbox", 0700);
  Mounts m;
  if (!m.mount(base->c_str(), kBaseDir, "ext4", MS_RDONLY | MS_NODEV, nullptr)) return false;
  if (persistent ? !m.mount(layer.c_str(), kLayerDir, "ext4", MS_NODEV, nullptr)
                 : !m.mount("tmpfs", kLayerDir, "tmpfs", MS_NODEV, "mode=0755"))
    return false;
  const std::string upper = std::string(kLayerDir) + "/upper", work = std::string(kLayerDir) + "/work";
  for (const std::string& d : {upper, work}) {
    if (::mkdir(d.c_str(), 0755) < 0 && errno != EEXIST) {
      log("root disk: mkdir {}: {}", d, std::strerror(errno));
      return false;
    }
  }
  const std::string opts = fmt::format("lowerdir={},upperdir={},workdir={}", kBaseDir, upper, work);
  if (!m.mount("overlay", kNewRoot, "overlay", 0, opts.c_str())) return false;

  // Point of no return once /dev moved: from here on, failures are logged and
  // the switch goes on as far as it can.
  for (const char* dir : {"/dev", "/proc", "/sys"}) {
    const std::string target = std::string(kNewRoot) + dir;
    ::mkdir(target.c_str(), 0755);
    if (::mount(dir, target.c_str(), nullptr, MS_MOVE, nullptr) < 0)
      log("root disk: move {} to the new root: {}", dir, std::strerror(errno));
  }
  m.keep();
  if (::chdir(kNewRoot) < 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) < 0 || ::chroot(".") < 0 ||
      ::chdir("/") < 0) {
    log("root disk: switching to {}: {}", kNewRoot, std::strerror(errno));
    return false;
  }
  log("root disk: {} = {} (read-only) + {} as /", disk.base, *base,
      persistent ? fmt::format("{} = {}", disk.overlay, layer) : std::string("tmpfs"));
  return true;
}

}  // namespace ksbox::agent
