// Passthrough: reading directories. Through a handle from OPENDIR, or, once
// the guest skips OPENDIR (set_implicit_dirs), through a stream this side
// keeps per directory: READDIR then comes with fh 0, and no RELEASEDIR.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "devices/fs/fuse_wire.h"
#include "devices/fs/passthrough.h"

namespace ksbox::devices::fs {
namespace {

// The record header of getdents64 (struct linux_dirent64 without the name).
struct HostDirent {
  uint64_t ino;
  int64_t off;
  uint16_t reclen;
  uint8_t type;
};
constexpr size_t kHostDirentName = 19;  // offsetof(linux_dirent64, d_name)

}  // namespace

int Passthrough::opendir(uint64_t nodeid, uint64_t& fh) {
  if (implicit_dirs_) return -ENOSYS;  // the guest's cue to stop asking
  UniqueFd fd;
  if (int r = open_dir(nodeid, fd)) return r;
  return add_handle(std::move(fd), true, fh);
}

int Passthrough::open_dir(uint64_t nodeid, UniqueFd& out) {
  PathFd node;
  if (int r = inodes_.fd(nodeid, node)) return r;
  struct stat st{};
  if (int r = stat_fd(node->get(), st)) return r;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  out = reopen(node->get(), O_RDONLY | O_DIRECTORY);
  return out ? 0 : -errno;
}

bool Passthrough::room_for_fd() {
  if (handles_.size() + dir_streams_.size() + file_streams_.size() < opts_.max_handles) return true;
  // The oldest stream gives way; the front file stream may be in use.
  if (!dir_streams_.empty()) dir_streams_.pop_back();
  else if (file_streams_.size() > 1) file_streams_.pop_back();
  else return false;
  return true;
}

Passthrough::Handle* Passthrough::dir_stream(uint64_t nodeid, int& err) {
  if (Handle* h = dir_streams_.use(nodeid)) return h;
  if (dir_streams_.size() >= kMaxDirStreams) dir_streams_.pop_back();
  if (!room_for_fd()) {
    err = -ENFILE;
    return nullptr;
  }
  UniqueFd fd;
  if ((err = open_dir(nodeid, fd))) return nullptr;
  return &dir_streams_.push_front(nodeid, Handle{std::move(fd), true});
}

int Passthrough::readdir(uint64_t nodeid, uint64_t fh, uint64_t offset, size_t size, bool plus,
                         std::vector<uint8_t>& out) {
  int err = -EBADF;
  Handle* h = fh == 0 && implicit_dirs_ ? dir_stream(nodeid, err) : handle(fh, true);
  const Inode* dir = inodes_.get(nodeid);
  if (!h) return err;
  if (!dir) return -EBADF;
  const dev_t dir_dev = dir->dev;  // a copy: the entries below change the table
  // Directory offsets are the host's d_off cookies: seek only when the guest
  // does not continue where the last reply ended (rewinddir, seekdir).
  if (offset != h->dir_next_off) {
    if (offset > static_cast<uint64_t>(INT64_MAX)) return -EINVAL;
    if (::lseek(h->fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) return -errno;
    h->dirbuf_pos = h->dirbuf_len = 0;
    h->dir_next_off = offset;
  }
  constexpr size_t kDirBuf = 16384;
  if (h->dirbuf.size() != kDirBuf) h->dirbuf.resize(kDirBuf);
  const size_t start = out.size();
  for (;;) {
    if (h->dirbuf_pos >= h->dirbuf_len) {
      const long n = ::syscall(SYS_getdents64, h->fd.get(), h->dirbuf.data(), h->dirbuf.size());
      if (n < 0) return out.size() > start ? 0 : -errno;
      h->dirbuf_pos = 0;
      h->dirbuf_len = static_cast<size_t>(n);
      if (n == 0) return 0;
    }
    const uint8_t* rec_start = h->dirbuf.data() + h->dirbuf_pos;
    HostDirent d{};
    std::memcpy(&d.ino, rec_start, 8);
    std::memcpy(&d.off, rec_start + 8, 8);
    std::memcpy(&d.reclen, rec_start + 16, 2);
    std::memcpy(&d.type, rec_start + 18, 1);
    if (d.reclen <= kHostDirentName || d.reclen > h->dirbuf_len - h->dirbuf_pos) return -EIO;  // never from Linux
    const char* name = reinterpret_cast<const char*>(rec_start + kHostDirentName);
    const size_t namelen = ::strnlen(name, d.reclen - kHostDirentName);
    const size_t head = plus ? sizeof(fuse_entry_out) + FUSE_NAME_OFFSET : FUSE_NAME_OFFSET;
    const size_t rec = FUSE_DIRENT_ALIGN(head + namelen);
    if (out.size() - start + rec > size) return 0;  // full: this record waits for the next call
    h->dirbuf_pos += d.reclen;
    h->dir_next_off = static_cast<uint64_t>(d.off);
    fuse_entry_out entry{};
    const std::string_view nv(name, namelen);
    if (plus && nv != "." && nv != "..") {
      // The guest takes a lookup reference for every entry it receives.
      // d_ino names a node the table holds: then it most likely is one (a
      // mount point's or an overlay's d_ino may differ: opened as new).
      const bool maybe_known = inodes_.find(dir_dev, d.ino) != 0;
      if (entry_for(nodeid, h->fd.get(), nv, entry, maybe_known) != 0) continue;  // vanished since getdents
    }
    fuse_dirent de{};
    de.ino = d.ino;
    de.off = static_cast<uint64_t>(d.off);
    de.namelen = static_cast<uint32_t>(namelen);
    de.type = d.type;
    const size_t at = out.size();
    out.resize(at + rec, 0);
    uint8_t* p = out.data() + at;
    if (plus) {
      std::memcpy(p, &entry, sizeof entry);
      p += sizeof entry;
    }
    std::memcpy(p, &de, FUSE_NAME_OFFSET);
    std::memcpy(p + FUSE_NAME_OFFSET, name, namelen);
  }
}

int Passthrough::fsync(uint64_t nodeid, uint64_t fh, bool datasync, bool dir) {
  int fd = -1;
  UniqueFd own;
  int err = -EBADF;
  if (dir && fh == 0 && implicit_dirs_) {
    if (int r = open_dir(nodeid, own)) return r;
    fd = own.get();
  } else if (Handle* h = dir ? handle(fh, true) : file_handle(nodeid, fh, false, err)) {
    fd = h->fd.get();
  } else {
    return err;
  }
  const int r = datasync ? ::fdatasync(fd) : ::fsync(fd);
  return r == 0 ? 0 : -errno;
}

}  // namespace ksbox::devices::fs
