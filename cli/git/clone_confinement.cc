#include "cli/git/clone_confinement.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "vmm/unique_fd.h"

namespace ksbox::git {
namespace {

bool write_proc(const char* path, std::string_view text) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

std::string failed(const char* what) { return fmt::format("{}: {}", what, std::strerror(errno)); }

// Unprivileged: a user namespace mapping our ids to themselves gives us
// CAP_SYS_ADMIN over a new mount namespace.
std::string enter_namespaces() {
  if (::unshare(CLONE_NEWNS) == 0) return "";
  if (errno != EPERM) return failed("unshare(CLONE_NEWNS)");
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return failed("unshare(CLONE_NEWUSER|CLONE_NEWNS)");
  if (!write_proc("/proc/self/setgroups", "deny") ||
      !write_proc("/proc/self/uid_map", fmt::format("{} {} 1\n", uid, uid)) ||
      !write_proc("/proc/self/gid_map", fmt::format("{} {} 1\n", gid, gid)))
    return failed("writing the user namespace's id maps");
  return "";
}

// Flags a remount of a bind mount must keep (the kernel refuses to clear
// locked ones inside a user namespace).
unsigned long kept_flags(const std::string& path) {
  struct statvfs sv {};
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long flags = 0;
  if (sv.f_flag & ST_RDONLY) flags |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

}  // namespace

std::string confine_clone(const std::string& root) {
  if (std::string why = enter_namespaces(); !why.empty()) return why;
  // Private: our mounts must not propagate back to the host's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return failed("making mounts private");
  if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return failed("bind-mounting the clone");
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSYMFOLLOW | kept_flags(root);
  if (::mount(nullptr, root.c_str(), nullptr, flags, nullptr) != 0) return failed("remounting the clone nosymfollow");
  return "";
}

}  // namespace ksbox::git
