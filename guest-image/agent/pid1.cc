#include "pid1.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "exec_env.h"
#include "log.h"
#include "net_setup.h"
#include "cmdline_param.h"
#include "root_disk.h"
#include "vmm/unique_fd.h"

namespace ksbox::agent {
namespace {

// A directory is a mount point if it is on another device than its parent
// (or is the root). Works before /proc exists, and on a tmpfs rootfs where
// the filesystem type alone says nothing.
bool is_mount_point(const std::string& dir) {
  struct stat st {}, parent {};
  if (::stat(dir.c_str(), &st) < 0 || ::stat((dir + "/..").c_str(), &parent) < 0) return false;
  return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino;
}

void mount_once(const char* type, const std::string& target, unsigned long flags, const char* data) {
  if (::mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) {
    log("mkdir {}: {}", target, std::strerror(errno));
    return;
  }
  if (is_mount_point(target)) return;
  if (::mount(type, target.c_str(), type, flags, data) < 0)
    log("mount {} on {}: {}", type, target, std::strerror(errno));
}

void bring_up_lo() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return;  // no IPv4 in this kernel: nothing to bring up
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) return;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  ::ioctl(s.get(), SIOCSIFFLAGS, &ifr);
}

// True if any virtio device bound to the virtiofs driver exists. Mounting a
// tag that is not there fails with a bare EINVAL, so look first and stay
// quiet on a VM without shares.
bool have_virtiofs_device() {
  DIR* d = ::opendir("/sys/bus/virtio/drivers/virtiofs");
  if (!d) return false;
  bool found = false;
  while (const dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, "virtio", 6) == 0) found = true;
  }
  ::closedir(d);
  return found;
}

// ksbox.root= on the kernel command line: make the root disk the root
// (root_disk.h). Before the mounts below, so they land in the new root.
void switch_root_if_asked() {
  std::string error;
  const auto disk = parse_root_disk(read_kernel_cmdline(), &error);
  if (!error.empty()) log("kernel command line: {}; staying in the initramfs", error);
  // A re-executed agent (after a crash) finds the switch done already.
  if (disk && !root_is_overlay()) switch_to_root_disk(*disk);
}

// The kernel caps a FUSE mount's readahead at the 128 KiB default of its
// bdi, whatever the server offers: sequential reads then cost a round trip
// to the VMM per 128 KiB. Raise it to a full request (1 MiB, the server's
// max_pages); a failure only costs speed.
void raise_readahead(const std::string& dir) {
  constexpr std::string_view kReadaheadKib = "1024";
  struct stat st{};
  if (::stat(dir.c_str(), &st) < 0) return;
  const std::string knob = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                           std::to_string(minor(st.st_dev)) + "/read_ahead_kb";
  UniqueFd fd(::open(knob.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), kReadaheadKib.data(), kReadaheadKib.size()) < 0)
    log("readahead of {} ({}): {}", dir, knob, std::strerror(errno));
}

// Mounts the share `tag` on `dir` unless something is mounted there already.
void mount_share(const std::string& tag, const std::string& dir) {
  if (is_mount_point(dir)) return;
  // nodev/nosuid: the VMM refuses device nodes and setuid bits already;
  // this keeps the guest kernel from honouring any that the host put there.
  if (::mount(tag.c_str(), dir.c_str(), "virtiofs", MS_NOSUID | MS_NODEV, nullptr) < 0) {
    log("mount virtiofs '{}' on {}: {}{}", tag, dir, std::strerror(errno),
        tag == kWorkspaceTag ? " (is there a --share workspace=DIR?)" : "");
    return;
  }
  raise_readahead(dir);
}

}  // namespace

void mount_workspace() {
  if (!have_virtiofs_device()) return;
  // The other shares the VMM announces go on /mnt/TAG.
  for (const auto& tag : parse_share_tags(read_kernel_cmdline())) {
    if (tag == kWorkspaceTag) continue;
    ::mkdir("/mnt", 0755);
    const std::string dir = "/mnt/" + tag;
    if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) continue;
    mount_share(tag, dir);
  }
  const std::string dir(kWorkspaceDir);
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) {
    log("mkdir {}: {}", dir, std::strerror(errno));
    return;
  }
  mount_share(kWorkspaceTag, dir);
}

void ensure_stdio(bool console) {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) continue;
    const char* path = console && fd > 0 ? "/dev/console" : "/dev/null";
    int got = ::open(path, fd == 0 ? O_RDONLY : O_WRONLY);
    if (got < 0) got = ::open("/dev/null", O_RDWR);
    if (got >= 0 && got != fd) {
      ::dup2(got, fd);
      ::close(got);
    }
  }
}

void setup_pid1() {
  mount_once("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_once("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_once("devtmpfs", "/dev", MS_NOSUID, "mode=0755");
  switch_root_if_asked();
  mount_once("devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
  mount_once("tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_once("tmpfs", "/tmp", 0, "mode=1777");
  if (::sethostname("ksbox", 5) < 0) log("sethostname: {}", std::strerror(errno));
  bring_up_lo();
  setup_network();
  mount_workspace();
}

int reap_all() {
  int n = 0;
  for (;;) {
    const pid_t pid = ::waitpid(-1, nullptr, WNOHANG);
    if (pid > 0) {
      ++n;
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    return n;
  }
}

void power_off() {
  using namespace std::chrono_literals;
  log("shutting down");
  ::kill(-1, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < deadline) {
    reap_all();
    if (::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD) break;  // nobody left
    std::this_thread::sleep_for(20ms);
  }
  ::kill(-1, SIGKILL);
  reap_all();
  ::sync();
  ::reboot(RB_AUTOBOOT);
  log("reboot: {}", std::strerror(errno));
}

}  // namespace ksbox::agent
