#include "root_disk.h"

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

namespace ksbox::agent {
namespace {

// Where the layers are mounted in the initramfs before the switch. They stay
// mounted (unreachable from the new root); the kernel keeps them alive.
constexpr const char* kBaseDir = "/.ksbox/base";
constexpr const char* kLayerDir = "/.ksbox/layer";
constexpr const char* kNewRoot = "/.ksbox/root";
constexpr std::string_view kRootParam = "ksbox.root=";
constexpr std::string_view kOverlayParam = "ksbox.overlay=";

bool valid_device(std::string_view v) {
  constexpr std::string_view kDev = "/dev/";
  if (!v.starts_with(kDev)) return false;
  const std::string_view name = v.substr(kDev.size());
  if (name.empty() || name.size() > 32) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// virtio-blk probes before init runs, but give a late device a moment.
bool wait_for_block_device(const std::string& dev) {
  using namespace std::chrono_literals;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    struct stat st {};
    if (::stat(dev.c_str(), &st) == 0) return S_ISBLK(st.st_mode);
    if (std::chrono::steady_clock::now() >= deadline) return false;
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
    if (value && !valid_device(*value)) {
      *error = fmt::format("{}'{}' is not /dev/NAME", key, value->substr(0, 64));
      return std::nullopt;
    }
  }
  return RootDisk{.base = std::string(*base), .overlay = std::string(overlay.value_or(""))};
}

bool root_is_overlay() {
  struct statfs st {};
  return ::statfs("/", &st) == 0 && st.f_type == OVERLAYFS_SUPER_MAGIC;
}

bool switch_to_root_disk(const RootDisk& disk) {
  for (const std::string* dev : {&disk.base, &disk.overlay}) {
    if (!dev->empty() && !wait_for_block_device(*dev)) {
      log("root disk: {} is not a block device (is there a --disk for it?)", *dev);
      return false;
    }
  }
  ::mkdir("/.ksbox", 0700);
  Mounts m;
  if (!m.mount(disk.base.c_str(), kBaseDir, "ext4", MS_RDONLY | MS_NODEV, nullptr)) return false;
  const bool persistent = !disk.overlay.empty();
  if (persistent ? !m.mount(disk.overlay.c_str(), kLayerDir, "ext4", MS_NODEV, nullptr)
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
  log("root disk: {} (read-only) + {} as /", disk.base, persistent ? disk.overlay : std::string("tmpfs"));
  return true;
}

}  // namespace ksbox::agent
