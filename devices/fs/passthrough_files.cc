// Passthrough: files used without OPEN (set_implicit_files). The guest then
// sends READ, WRITE, FSYNC, FALLOCATE, LSEEK and COPY_FILE_RANGE with fh 0,
// and this side keeps one host fd per node, for the most recently used
// nodes: two round trips fewer per open() and close() of the guest, which
// with the page cache kept (worktree, always) were all a warm read cost.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "devices/fs/passthrough.h"

namespace ksbox::devices::fs {

uint64_t Passthrough::forget(uint64_t nodeid, uint64_t n) {
  const uint64_t excess = inodes_.forget(nodeid, n);
  // Its fd would keep an unlinked file's blocks (or a removed directory)
  // on the host; its nodeid is not handed out again (see InodeTable).
  if (!inodes_.known(nodeid)) {
    file_streams_.erase(nodeid);
    dir_streams_.erase(nodeid);
  }
  return excess;
}

Passthrough::Handle* Passthrough::file_handle(uint64_t nodeid, uint64_t fh, bool write, int& err) {
  if (fh == 0 && implicit_files_) return file_stream(nodeid, write, err);
  err = -EBADF;
  return handle(fh, false);
}

Passthrough::Handle* Passthrough::file_stream(uint64_t nodeid, bool write, int& err) {
  if (FileStream* s = file_streams_.use(nodeid)) {
    // One-way because the host said so when it was opened: ask again.
    if (s->access != (write ? O_RDONLY : O_WRONLY)) return &s->h;
    UniqueFd fd;
    int access = 0;
    if ((err = open_stream(nodeid, write, fd, access))) return nullptr;
    s->h.fd = std::move(fd);
    s->access = access;
    return &s->h;
  }
  if (!room_for_stream()) {
    err = -ENFILE;
    return nullptr;
  }
  UniqueFd fd;
  int access = 0;
  if ((err = open_stream(nodeid, write, fd, access))) return nullptr;
  return &file_streams_.push_front(nodeid, FileStream{Handle{std::move(fd), false}, access}).h;
}

int Passthrough::open_stream(uint64_t nodeid, bool write, UniqueFd& out, int& access) {
  PathFd node;
  if (int r = inodes_.fd(nodeid, node)) return r;
  struct stat st{};
  if (int r = stat_fd(node->get(), st)) return r;
  if (S_ISDIR(st.st_mode)) return -EISDIR;
  if (S_ISLNK(st.st_mode)) return -ELOOP;
  if (!S_ISREG(st.st_mode)) return -EACCES;  // device, FIFO, socket: never opened on the host
  if (opts_.read_only) {
    if (write) return -EROFS;
    access = O_RDONLY;
    out = reopen(node->get(), O_RDONLY);
    return out ? 0 : -errno;
  }
  // The guest's kernel checked its own permissions; the host may still
  // refuse a direction (a mode the VMM's user lacks, a running binary).
  int err = 0;
  for (const int a : {O_RDWR, write ? O_WRONLY : O_RDONLY}) {
    out = reopen(node->get(), a);
    if (out) {
      access = a;
      return 0;
    }
    err = -errno;
    if (err != -EACCES && err != -EPERM && err != -ETXTBSY) break;
  }
  return err;
}

bool Passthrough::room_for_stream() {
  if (file_streams_.size() >= kMaxFileStreams) file_streams_.pop_back();
  return room_for_fd();
}

void Passthrough::adopt_stream(uint64_t nodeid, UniqueFd fd) {
  if (!room_for_stream()) return;  // the first I/O opens one
  file_streams_.push_front(nodeid, FileStream{Handle{std::move(fd), false}, O_RDWR});
}

}  // namespace ksbox::devices::fs
