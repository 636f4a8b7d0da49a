// Passthrough: extended attributes. Only the user.* namespace passes: the
// guest must not set security.* (capabilities, LSM labels) or trusted.* on
// host files, nor read the host's. Other names answer EOPNOTSUPP and are
// left out of lists. Regular files and directories are reached through
// their /proc magic link (no open, so no read permission or O_NOATIME
// question); other types have no user.* attributes on Linux and are answered
// as such without touching them.
#include <linux/limits.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>

#include "devices/fs/passthrough.h"

namespace ksbox::devices::fs {
namespace {

constexpr std::string_view kUserPrefix = "user.";

bool user_name(std::string_view name) { return name.starts_with(kUserPrefix); }

}  // namespace

int Passthrough::xattr_path(uint64_t nodeid, PathFd& fd, std::string& path, bool& special) {
  if (int r = inodes_.fd(nodeid, fd)) return r;
  struct stat st{};
  if (int r = stat_fd(fd->get(), st)) return r;
  special = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
  if (!special) path = "/proc/self/fd/" + proc_name(fd->get());
  return 0;
}

int Passthrough::xattr_named(uint64_t nodeid, std::string_view name, bool change, PathFd& fd, std::string& path,
                             bool& special) {
  if (!known(nodeid)) return -ESTALE;
  if (change && opts_.read_only) return -EROFS;
  if (!user_name(name)) return -EOPNOTSUPP;
  return xattr_path(nodeid, fd, path, special);
}

ssize_t Passthrough::getxattr(uint64_t nodeid, std::string_view name, size_t size, std::vector<uint8_t>& out) {
  PathFd fd;
  std::string path;
  bool special = false;
  if (int r = xattr_named(nodeid, name, false, fd, path, special)) return r;
  if (special) return -ENODATA;
  const std::string n(name);
  out.resize(std::min<size_t>(size, XATTR_SIZE_MAX));
  const ssize_t len = ::getxattr(path.c_str(), n.c_str(), out.data(), out.size());
  if (len < 0) return -errno;
  out.resize(size ? static_cast<size_t>(len) : 0);
  return len;
}

ssize_t Passthrough::listxattr(uint64_t nodeid, size_t size, std::vector<uint8_t>& out) {
  PathFd fd;
  std::string path;
  bool special = false;
  if (int r = xattr_path(nodeid, fd, path, special)) return r;
  out.clear();
  if (special) return 0;
  // The host's whole list, then only the user.* names. The list may grow
  // between the probe and the read: ERANGE then means probe again.
  std::vector<char> all;
  ssize_t len = -1;
  for (int tries = 0; tries < 4 && len < 0; ++tries) {
    const ssize_t want = ::listxattr(path.c_str(), nullptr, 0);
    if (want < 0) return -errno;
    all.resize(static_cast<size_t>(want));
    len = want ? ::listxattr(path.c_str(), all.data(), all.size()) : 0;
    if (len < 0 && errno != ERANGE) return -errno;
  }
  if (len < 0) return -ERANGE;
  all.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < all.size();) {
    const std::string_view entry(all.data() + pos, ::strnlen(all.data() + pos, all.size() - pos));
    pos += entry.size() + 1;
    if (user_name(entry)) {
      out.insert(out.end(), entry.begin(), entry.end());
      out.push_back(0);
    }
  }
  const auto total = static_cast<ssize_t>(out.size());
  if (size == 0) out.clear();
  else if (out.size() > size) return -ERANGE;
  return total;
}

int Passthrough::setxattr(uint64_t nodeid, std::string_view name, std::span<const uint8_t> value, uint32_t flags) {
  PathFd fd;
  std::string path;
  bool special = false;
  if (int r = xattr_named(nodeid, name, true, fd, path, special)) return r;
  if (flags & ~static_cast<uint32_t>(XATTR_CREATE | XATTR_REPLACE)) return -EINVAL;
  if (special) return -EPERM;  // as Linux answers for user.* on special files
  const std::string n(name);
  const int r = ::setxattr(path.c_str(), n.c_str(), value.data(), value.size(), static_cast<int>(flags));
  return r == 0 ? 0 : -errno;
}

int Passthrough::removexattr(uint64_t nodeid, std::string_view name) {
  PathFd fd;
  std::string path;
  bool special = false;
  if (int r = xattr_named(nodeid, name, true, fd, path, special)) return r;
  if (special) return -EPERM;
  const std::string n(name);
  return ::removexattr(path.c_str(), n.c_str()) == 0 ? 0 : -errno;
}

}  // namespace ksbox::devices::fs
