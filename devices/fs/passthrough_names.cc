// Passthrough: the operations that make, move and remove names. Besides the
// host call, each keeps the inode table's record of names current, because
// an inode whose O_PATH fd was evicted is re-opened by the name it had
// (inode_table.h): a renamed inode gets its new name, an unlinked or
// replaced one loses it (keeping an fd opened just before, so that it works
// while the guest still holds it).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "devices/fs/open_beneath.h"
#include "devices/fs/passthrough.h"

namespace ksbox::devices::fs {

Passthrough::Named Passthrough::named(uint64_t parent, int dirfd, std::string_view name) {
  Named r;
  const std::string n(name);
  struct stat st{};
  if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return r;
  r.node = inodes_.find(st.st_dev, st.st_ino);
  if (r.node == 0 || !inodes_.needs_fd_before_unname(r.node, parent, name)) return r;
  UniqueFd fd = open_beneath(dirfd, name, O_PATH);
  struct stat now{};
  if (fd && stat_fd(fd.get(), now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) r.keep = std::move(fd);
  return r;
}

int Passthrough::mkdir(uint64_t parent, std::string_view name, uint32_t mode, fuse_entry_out& out) {
  PathFd dir;
  if (int r = inodes_.fd(parent, dir)) return r;
  if (opts_.read_only) return -EROFS;
  const std::string n(name);
  if (::mkdirat(dir->get(), n.c_str(), mode & kModeMask) != 0) return -errno;
  return entry_for(parent, dir->get(), name, out);
}

int Passthrough::symlink(uint64_t parent, std::string_view name, std::string_view target, fuse_entry_out& out) {
  PathFd dir;
  if (int r = inodes_.fd(parent, dir)) return r;
  if (opts_.read_only) return -EROFS;
  const std::string n(name), t(target);
  if (::symlinkat(t.c_str(), dir->get(), n.c_str()) != 0) return -errno;
  return entry_for(parent, dir->get(), name, out);
}

int Passthrough::link(uint64_t nodeid, uint64_t newparent, std::string_view newname, fuse_entry_out& out) {
  PathFd node, dir;
  if (int r = inodes_.fd(nodeid, node)) return r;
  if (int r = inodes_.fd(newparent, dir)) return r;
  if (opts_.read_only) return -EROFS;
  struct stat st{};
  if (int r = stat_fd(node->get(), st)) return r;
  if (S_ISDIR(st.st_mode)) return -EPERM;
  const std::string n(newname);
  // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc magic link does not.
  const std::string src = "/proc/self/fd/" + proc_name(node->get());
  if (::linkat(AT_FDCWD, src.c_str(), dir->get(), n.c_str(), AT_SYMLINK_FOLLOW) != 0) return -errno;
  return entry_for(newparent, dir->get(), newname, out);
}

int Passthrough::remove_name(uint64_t parent, std::string_view name, int flags) {
  PathFd dir;
  if (int r = inodes_.fd(parent, dir)) return r;
  if (opts_.read_only) return -EROFS;
  const std::string n(name);
  Named gone = named(parent, dir->get(), name);
  if (::unlinkat(dir->get(), n.c_str(), flags) != 0) return -errno;
  inodes_.unnamed(gone.node, parent, name, std::move(gone.keep));
  return 0;
}

int Passthrough::unlink(uint64_t parent, std::string_view name) { return remove_name(parent, name, 0); }

int Passthrough::rmdir(uint64_t parent, std::string_view name) { return remove_name(parent, name, AT_REMOVEDIR); }

int Passthrough::rename(uint64_t parent, std::string_view name, uint64_t newparent, std::string_view newname,
                        uint32_t flags) {
  PathFd from, to;
  if (int r = inodes_.fd(parent, from)) return r;
  if (int r = inodes_.fd(newparent, to)) return r;
  if (opts_.read_only) return -EROFS;
  if (flags & ~static_cast<uint32_t>(RENAME_NOREPLACE | RENAME_EXCHANGE)) return -EINVAL;
  const std::string a(name), b(newname);
  const Named moved = named(parent, from->get(), name);
  Named other = named(newparent, to->get(), newname);
  if (::renameat2(from->get(), a.c_str(), to->get(), b.c_str(), flags) != 0) return -errno;
  if (flags & RENAME_EXCHANGE) {
    inodes_.renamed(other.node, parent, name);
  } else if (other.node != moved.node) {  // renaming a hard link onto another of the same file changes nothing
    inodes_.unnamed(other.node, newparent, newname, std::move(other.keep));
  }
  inodes_.renamed(moved.node, newparent, newname);
  return 0;
}

int Passthrough::mknod(uint64_t parent, std::string_view name, uint32_t mode, fuse_entry_out& out) {
  PathFd dir;
  if (int r = inodes_.fd(parent, dir)) return r;
  if (opts_.read_only) return -EROFS;
  // A device node would hand the guest host hardware (if the VMM could
  // make one); FIFOs and sockets are only names here, never opened.
  switch (mode & S_IFMT) {
    case 0: case S_IFREG: case S_IFIFO: case S_IFSOCK: break;
    case S_IFCHR: case S_IFBLK: return -EPERM;
    default: return -EINVAL;
  }
  const std::string n(name);
  if (::mknodat(dir->get(), n.c_str(), (mode & S_IFMT) | (mode & kModeMask), 0) != 0) return -errno;
  return entry_for(parent, dir->get(), name, out);
}

}  // namespace ksbox::devices::fs
