// Passthrough: unnamed files and the file data operations beyond read and
// write (fallocate, lseek, copy_file_range). All act on open handles or file
// streams, whose files were type-checked when opened.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "devices/fs/open_beneath.h"
#include "devices/fs/passthrough.h"

namespace ksbox::devices::fs {
namespace {

constexpr uint64_t kMaxOff = static_cast<uint64_t>(INT64_MAX);

// Modes that only allocate or zero the guest's own file. COLLAPSE_RANGE,
// INSERT_RANGE, UNSHARE_RANGE and anything newer shift or rewrite extents
// and are left to the guest's fallback (or refused).
bool allowed_fallocate_mode(uint32_t mode) {
  switch (mode) {
    case 0:
    case FALLOC_FL_KEEP_SIZE:
    case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
    case FALLOC_FL_ZERO_RANGE:
    case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
      return true;
    default:
      return false;
  }
}

}  // namespace

int Passthrough::tmpfile(uint64_t parent, uint32_t flags, uint32_t mode, fuse_entry_out& out, uint64_t& fh) {
  PathFd dir;
  if (int r = inodes_.fd(parent, dir)) return r;
  if (opts_.read_only) return -EROFS;
  const uint32_t acc = flags & O_ACCMODE;
  if (acc != O_WRONLY && acc != O_RDWR) return -EINVAL;  // O_TMPFILE needs write access
  // O_EXCL is kept: the host then refuses to link the file, as Linux does.
  const int base = implicit_files_ ? O_RDWR : host_flags(flags) & ~O_TRUNC;  // a stream: see create()
  const int excl = static_cast<int>(flags) & O_EXCL;
  UniqueFd fd = open_beneath(dir->get(), ".", base | excl | O_TMPFILE | O_NOCTTY, mode & kModeMask & 0777);
  if (!fd) return -errno;
  return adopt_created(std::move(fd), out, fh);
}

int Passthrough::fallocate(uint64_t nodeid, uint64_t fh, uint32_t mode, uint64_t offset, uint64_t length) {
  if (opts_.read_only) return -EROFS;
  int err = 0;
  Handle* h = file_handle(nodeid, fh, true, err);
  if (!h) return err;
  if (!allowed_fallocate_mode(mode)) return -EOPNOTSUPP;
  if (offset > kMaxOff || length > kMaxOff) return -EINVAL;
  if (length > kMaxOff - offset) return -EFBIG;
  const int r = ::fallocate(h->fd.get(), static_cast<int>(mode), static_cast<off_t>(offset),
                            static_cast<off_t>(length));
  return r == 0 ? 0 : -errno;
}

int Passthrough::lseek(uint64_t nodeid, uint64_t fh, uint64_t offset, uint32_t whence, uint64_t& result) {
  int err = 0;
  Handle* h = file_handle(nodeid, fh, false, err);
  if (!h) return err;
  switch (whence) {
    case SEEK_SET: case SEEK_CUR: case SEEK_END: case SEEK_DATA: case SEEK_HOLE: break;
    default: return -EINVAL;
  }
  // With the writeback cache the guest's newest data may not have reached
  // the host yet, and the kernel does not flush before LSEEK: the host would
  // place holes (and the end of file) wrongly. ENOSYS makes the guest answer
  // SEEK_DATA/SEEK_HOLE itself for this session: all data, the one hole at
  // its own end of file (holes are optional in POSIX).
  if (writeback_ && (whence == SEEK_DATA || whence == SEEK_HOLE)) return -ENOSYS;
  // The offset is the kernel's loff_t; the host judges its sign per whence.
  const off_t r = ::lseek(h->fd.get(), static_cast<off_t>(offset), static_cast<int>(whence));
  if (r < 0) return -errno;
  result = static_cast<uint64_t>(r);
  return 0;
}

ssize_t Passthrough::copy_file_range(uint64_t node_in, uint64_t fh_in, uint64_t off_in, uint64_t node_out,
                                     uint64_t fh_out, uint64_t off_out, size_t len, uint64_t flags) {
  if (opts_.read_only) return -EROFS;
  // The source's fd is taken second: taking the destination's may close
  // older streams, never the one just used (room_for_fd).
  int err = 0;
  Handle* out = file_handle(node_out, fh_out, true, err);
  if (!out) return err;
  const int out_fd = out->fd.get();
  Handle* in = file_handle(node_in, fh_in, false, err);
  if (!in) return err;
  if (flags != 0) return -EINVAL;  // none defined
  if (off_in > kMaxOff || off_out > kMaxOff) return -EINVAL;
  loff_t a = static_cast<loff_t>(off_in), b = static_cast<loff_t>(off_out);
  const ssize_t n = ::copy_file_range(in->fd.get(), &a, out_fd, &b, len, 0);
  return n < 0 ? -errno : n;
}

}  // namespace ksbox::devices::fs
