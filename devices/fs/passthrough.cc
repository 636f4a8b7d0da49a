#include "devices/fs/passthrough.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "devices/fs/fuse_wire.h"
#include "devices/fs/iov_batch.h"
#include "devices/fs/open_beneath.h"
#include "vmm/error.h"

namespace ksbox::devices::fs {
namespace {

constexpr uint32_t kAutoTimeoutS = 1;
constexpr uint32_t kLongTimeoutS = 86400;

InodeTable make_table(const std::string& root, size_t max_inodes, size_t max_fds) {
  UniqueFd fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("share root " + root);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat of share root " + root);
  return InodeTable(std::move(fd), st.st_dev, st.st_ino, max_inodes, max_fds);
}

bool mutating_open(uint32_t flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
}

}  // namespace

CachePolicy parse_cache_policy(std::string_view s) {
  if (s == "never") return CachePolicy::kNever;
  if (s == "auto") return CachePolicy::kAuto;
  if (s == "always") return CachePolicy::kAlways;
  if (s == "worktree") return CachePolicy::kWorktree;
  throw Error("unknown cache policy '" + std::string(s) + "': valid values are never, auto, always, worktree");
}

PassthroughOptions PassthroughOptions::with_cache(CachePolicy policy) const {
  PassthroughOptions o = *this;
  o.cache = policy;
  o.entry_timeout_s = o.attr_timeout_s = policy == CachePolicy::kNever  ? 0
                                         : policy == CachePolicy::kAuto ? kAutoTimeoutS
                                                                        : kLongTimeoutS;
  o.writeback = policy == CachePolicy::kAlways;
  return o;
}

PassthroughOptions PassthroughOptions::fit_to_fd_limit(uint64_t fd_limit) const {
  constexpr uint64_t kHeadroom = 2048;  // vsock streams, eventfds, io_uring, the rest of the VMM
  PassthroughOptions o = *this;
  const uint64_t budget = fd_limit > 2 * kHeadroom ? fd_limit - kHeadroom : fd_limit / 2;
  o.max_handles = static_cast<size_t>(std::min<uint64_t>(o.max_handles, std::max<uint64_t>(budget / 8, 1)));
  o.max_fds = static_cast<size_t>(std::min<uint64_t>(o.max_fds, std::max<uint64_t>(budget - o.max_handles, 1)));
  return o;
}

uint32_t PassthroughOptions::open_reply_flags(bool dir, bool host_edits) const {
  // No FLUSH at every close: it would check the handle and nothing else.
  // Writes are done when answered, locks stay in the guest (no
  // POSIX_LOCKS), and pages a shared mapping dirtied are written back when
  // it is unmapped (fuse_vma_close). The writeback cache (kAlways) is
  // flushed at close all the same.
  const uint32_t file = dir ? 0 : FOPEN_NOFLUSH;
  switch (cache) {
    case CachePolicy::kNever: return dir ? 0 : file | FOPEN_DIRECT_IO;
    case CachePolicy::kAuto: return file;
    case CachePolicy::kWorktree:
      if (host_edits) return file;
      [[fallthrough]];
    // A directory's listing cache lives in its page cache, which an open
    // without KEEP_CACHE drops (fuse_open_common): both, or nothing is kept.
    case CachePolicy::kAlways: return dir ? FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE : file | FOPEN_KEEP_CACHE;
  }
  return 0;
}

bool Passthrough::host_edits(uint64_t nodeid) const {
  return opts_.cache == CachePolicy::kWorktree && inodes_.within_dir_named(nodeid, ".git");
}

Passthrough::Timeouts Passthrough::timeouts(uint64_t nodeid) const {
  if (host_edits(nodeid)) return {kAutoTimeoutS, kAutoTimeoutS};
  return {opts_.entry_timeout_s, opts_.attr_timeout_s};
}

Passthrough::Passthrough(const std::string& root, PassthroughOptions opts, std::unique_ptr<IoEngine> engine)
    : opts_(opts),
      host_uid_(opts.host_uid.value_or(::geteuid())),
      host_gid_(opts.host_gid.value_or(::getegid())),
      engine_(engine ? std::move(engine) : std::make_unique<SyncIoEngine>()),
      proc_self_fd_(::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC)),
      inodes_(make_table(root, opts.max_inodes, opts.max_fds)) {
  if (!proc_self_fd_) throw_errno("open /proc/self/fd");
}

UniqueFd Passthrough::reopen(int path_fd, int flags) const {
  // Callers checked the type on the O_PATH fd; the magic link reaches that
  // same inode, whatever happened to its name since.
  return UniqueFd(::openat(proc_self_fd_.get(), proc_name(path_fd).c_str(), flags | O_CLOEXEC | O_NOCTTY));
}

int Passthrough::host_flags(uint32_t flags) const {
  int f = static_cast<int>(flags) & kOpenFlagsPassed;
  if (writeback_) {
    // The guest's page cache fills partly written pages by reading, so a
    // write-only file is opened read-write; and the guest places appends
    // itself (at its own idea of the end), so O_APPEND must not move them.
    f &= ~O_APPEND;
    if ((f & O_ACCMODE) == O_WRONLY) f = (f & ~O_ACCMODE) | O_RDWR;
  }
  return f;
}

int Passthrough::stat_fd(int path_fd, struct stat& st) {
  return ::fstatat(path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

// fill_attr(), fill_entry() and getattr() set every field, with no zeroing
// first: the hot paths' replies are written once (a zeroing of the whole
// struct is a `rep stos`, slow to start at these sizes). A struct with more
// fields than these would leave some unset: then this fails to compile.
static_assert(sizeof(fuse_attr) == 6 * 8 + 10 * 4);
static_assert(sizeof(fuse_entry_out) == 4 * 8 + 2 * 4 + sizeof(fuse_attr));
static_assert(sizeof(fuse_attr_out) == 8 + 2 * 4 + sizeof(fuse_attr));

void Passthrough::fill_attr(const struct stat& st, fuse_attr& a) const {
  a.ino = st.st_ino;
  a.size = static_cast<uint64_t>(st.st_size);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.atime = static_cast<uint64_t>(st.st_atim.tv_sec);
  a.mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
  a.ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
  a.atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a.mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a.ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid == host_uid_ ? opts_.guest_uid : kOverflowId;
  a.gid = st.st_gid == host_gid_ ? opts_.guest_gid : kOverflowId;
  a.rdev = static_cast<uint32_t>(st.st_rdev);
  a.blksize = static_cast<uint32_t>(st.st_blksize);
  a.flags = 0;
}

int Passthrough::entry_for(uint64_t parent, int dirfd, std::string_view name, fuse_entry_out& out,
                           bool maybe_known) {
  // A name that likely stands for a node the table holds (a guest
  // revalidating its dentry, a second `ls -l`): if it does, that node is
  // the answer after one fstatat, instead of open + fstat + close. The name
  // is a single component and not followed, so the stat stays in `dirfd`;
  // and the node is the inode the name stood for at the stat, whatever the
  // host did to the name since, as an open would have found it.
  if (maybe_known && valid_name(name)) {
    char n[NAME_MAX + 1];
    std::memcpy(n, name.data(), name.size());
    n[name.size()] = '\0';
    struct stat st;
    if (::fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0) return -errno;
    if (const uint64_t id = inodes_.ref_known(st.st_dev, st.st_ino, parent, name)) {
      fill_entry(id, st, out);
      return 0;
    }
  }
  UniqueFd fd = open_beneath(dirfd, name, O_PATH);
  if (!fd) return errno == EMFILE ? -ENFILE : -errno;
  return entry_from(std::move(fd), out, parent, name);
}

int Passthrough::entry_from(UniqueFd fd, fuse_entry_out& out, uint64_t parent, std::string_view name) {
  struct stat st;
  if (int r = stat_fd(fd.get(), st)) return r;
  const uint64_t id = inodes_.ref(std::move(fd), st.st_dev, st.st_ino, parent, name);
  if (id == 0) return -ENFILE;
  fill_entry(id, st, out);
  return 0;
}

void Passthrough::fill_entry(uint64_t nodeid, const struct stat& st, fuse_entry_out& out) const {
  out.nodeid = nodeid;
  out.generation = 0;
  const Timeouts t = timeouts(nodeid);
  out.entry_valid = t.entry_s;
  out.attr_valid = t.attr_s;
  out.entry_valid_nsec = 0;
  out.attr_valid_nsec = 0;
  fill_attr(st, out.attr);
  hold_back_recent_mtime(nodeid, st, out.attr);
}

void Passthrough::hold_back_recent_mtime(uint64_t nodeid, const struct stat& st, fuse_attr& a) const {
  if (!implicit_dirs_ || !S_ISDIR(st.st_mode)) return;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  // Recent: a change now could leave the mtime as it is. Linux stamps
  // changes with this clock, which advances a tick (a few ms) at a time:
  // an mtime behind it is final, 50 ms is slack. An mtime of whole
  // seconds may come from a file system that keeps no more (ext3; FAT
  // keeps 2 s). A future mtime counts as recent.
  const auto ns = [](const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; };
  const bool recent = st.st_mtim.tv_nsec == 0 ? st.st_mtim.tv_sec >= now.tv_sec - 2
                                               : ns(st.st_mtim) >= ns(now) - 50'000'000;
  // host_edits() last: a walk up the names, after timeouts() took one.
  if (!recent || !host_edits(nodeid)) return;
  if (a.mtimensec > 0) {
    --a.mtimensec;
  } else {
    --a.mtime;
    a.mtimensec = 999'999'999;
  }
}

int Passthrough::lookup(uint64_t parent, std::string_view name, fuse_entry_out& out) {
  PathFd dir;
  if (int r = inodes_.fd(parent, dir)) return r;
  // A name in a directory where the guest holds others is worth a stat
  // first: a revalidation of one it holds costs one syscall instead of
  // three. Where it holds none (a first walk), straight to the open.
  const int r = entry_for(parent, dir->get(), name, out, inodes_.get(parent)->children != 0);
  if (r != -ENOENT || !remembers_absent(parent, name)) return r;
  out = {};
  out.entry_valid = opts_.entry_timeout_s;
  return 0;
}

bool Passthrough::remembers_absent(uint64_t parent, std::string_view name) const {
  switch (opts_.cache) {
    // For its 1 s, as names are: creating a file asks for its name twice
    // (the open, then the create's own check), so an untar asks the host
    // half as often; a name the host adds shows up within that second.
    case CachePolicy::kAuto: return true;
    // Not inside .git, where the host adds objects and refs, nor .git itself.
    case CachePolicy::kWorktree: return name != ".git" && !host_edits(parent);
    case CachePolicy::kNever: case CachePolicy::kAlways: return false;
  }
  return false;
}

int Passthrough::getattr(uint64_t nodeid, fuse_attr_out& out, std::optional<uint64_t> fh) {
  struct stat st;
  if (Handle* h = fh ? handle(*fh, false) : nullptr) {
    if (::fstat(h->fd.get(), &st) != 0) return -errno;
  } else {
    PathFd node;
    if (int r = inodes_.fd(nodeid, node)) return r;
    if (int r = stat_fd(node->get(), st)) return r;
  }
  out.attr_valid = timeouts(nodeid).attr_s;
  out.attr_valid_nsec = 0;
  out.dummy = 0;
  fill_attr(st, out.attr);
  hold_back_recent_mtime(nodeid, st, out.attr);
  return 0;
}

namespace {
// The mode without the bits a write by a user without CAP_FSETID drops
// (Linux's setattr_should_drop_suidgid): setuid, and setgid where the group
// may execute (setgid without it marks mandatory locking and stays).
mode_t without_suidgid(mode_t mode) {
  mode_t m = mode & ~static_cast<mode_t>(S_ISUID);
  if ((m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) m &= ~static_cast<mode_t>(S_ISGID);
  return m;
}
}  // namespace

void Passthrough::kill_suidgid(uint64_t nodeid, uint64_t fh) {
  int err = 0;
  Handle* h = file_handle(nodeid, fh, false, err);
  struct stat st{};
  if (!h || ::fstat(h->fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  const mode_t m = without_suidgid(st.st_mode);
  // Fails only where the VMM may not chmod; then it lacks CAP_FSETID too
  // and the host kernel cleared the bits itself.
  if (m != st.st_mode) (void)::fchmod(h->fd.get(), m & 07777);
}

int Passthrough::setattr(uint64_t nodeid, const fuse_setattr_in& in, fuse_attr_out& out) {
  PathFd node;
  if (int r = inodes_.fd(nodeid, node)) return r;
  if (opts_.read_only) return -EROFS;
  struct stat st{};
  if (int r = stat_fd(node->get(), st)) return r;
  // Ownership never changes on the host: the VMM may not, and the guest must
  // not pick host ids. Chown to the owner the guest already sees is a no-op.
  constexpr uint32_t kUnchanged = static_cast<uint32_t>(-1);
  if ((in.valid & FATTR_UID) && in.uid != kUnchanged && (in.uid != opts_.guest_uid || st.st_uid != host_uid_))
    return -EPERM;
  if ((in.valid & FATTR_GID) && in.gid != kUnchanged && (in.gid != opts_.guest_gid || st.st_gid != host_gid_))
    return -EPERM;
  const bool special = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
  const std::string self = proc_name(node->get());
  if (in.valid & FATTR_MODE) {
    if (special) return -EOPNOTSUPP;  // symlinks and special files: not through /proc
    if (::fchmodat(proc_self_fd_.get(), self.c_str(), in.mode & kModeMask, 0) != 0) return -errno;
  }
  if (in.valid & FATTR_SIZE) {
    if (!S_ISREG(st.st_mode)) return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    if (in.size > static_cast<uint64_t>(INT64_MAX)) return -EFBIG;
    Handle* h = (in.valid & FATTR_FH) ? handle(in.fh, false) : nullptr;
    UniqueFd tmp;
    int fd = h ? h->fd.get() : -1;
    if (fd < 0) {
      tmp = reopen(node->get(), O_WRONLY);
      if (!tmp) return -errno;
      fd = tmp.get();
    }
    if (::ftruncate(fd, static_cast<off_t>(in.size)) != 0) return -errno;
  }
  if (in.valid & (FATTR_ATIME | FATTR_MTIME)) {
    if (special) return -EOPNOTSUPP;
    timespec ts[2];
    ts[0] = {static_cast<time_t>(in.atime), static_cast<long>(in.atimensec)};
    ts[1] = {static_cast<time_t>(in.mtime), static_cast<long>(in.mtimensec)};
    if (!(in.valid & FATTR_ATIME)) ts[0].tv_nsec = UTIME_OMIT;
    else if (in.valid & FATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
    if (!(in.valid & FATTR_MTIME)) ts[1].tv_nsec = UTIME_OMIT;
    else if (in.valid & FATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
    if (::utimensat(proc_self_fd_.get(), self.c_str(), ts, 0) != 0) return -errno;
  }
  if ((in.valid & FATTR_KILL_SUIDGID) && S_ISREG(st.st_mode)) {
    struct stat now{};
    if (stat_fd(node->get(), now) == 0 && without_suidgid(now.st_mode) != now.st_mode)
      (void)::fchmodat(proc_self_fd_.get(), self.c_str(), without_suidgid(now.st_mode) & 07777, 0);
  }
  return getattr(nodeid, out);
}

int Passthrough::statfs(uint64_t nodeid, fuse_kstatfs& out) {
  PathFd node;
  if (int r = inodes_.fd(nodeid, node)) return r;
  struct statvfs sv{};
  if (::fstatvfs(node->get(), &sv) != 0) return -errno;
  out = {};
  out.blocks = sv.f_blocks;
  out.bfree = sv.f_bfree;
  out.bavail = sv.f_bavail;
  out.files = sv.f_files;
  out.ffree = sv.f_ffree;
  out.bsize = static_cast<uint32_t>(sv.f_bsize);
  out.namelen = static_cast<uint32_t>(sv.f_namemax);
  out.frsize = static_cast<uint32_t>(sv.f_frsize);
  return 0;
}

int Passthrough::readlink(uint64_t nodeid, std::string& target) {
  PathFd node;
  if (int r = inodes_.fd(nodeid, node)) return r;
  char buf[PATH_MAX];
  const ssize_t n = ::readlinkat(node->get(), "", buf, sizeof buf);
  if (n < 0) return -errno;
  if (static_cast<size_t>(n) >= sizeof buf) return -ENAMETOOLONG;
  target.assign(buf, static_cast<size_t>(n));
  return 0;
}

int Passthrough::add_handle(UniqueFd fd, bool dir, uint64_t& fh) {
  if (!room_for_fd()) return -ENFILE;
  fh = next_fh_++;
  handles_.emplace(fh, Handle{std::move(fd), dir});
  return 0;
}

Passthrough::Handle* Passthrough::handle(uint64_t fh, bool dir) {
  auto it = handles_.find(fh);
  if (it == handles_.end() || it->second.dir != dir) return nullptr;
  return &it->second;
}

int Passthrough::open(uint64_t nodeid, uint32_t flags, uint64_t& fh) {
  if (implicit_files_) return -ENOSYS;  // the guest's cue to stop asking
  PathFd node;
  if (int r = inodes_.fd(nodeid, node)) return r;
  if ((flags & O_ACCMODE) == O_ACCMODE) return -EINVAL;
  if (opts_.read_only && mutating_open(flags)) return -EROFS;
  struct stat st{};
  if (int r = stat_fd(node->get(), st)) return r;
  if (S_ISDIR(st.st_mode)) return -EISDIR;
  if (S_ISLNK(st.st_mode)) return -ELOOP;
  if (!S_ISREG(st.st_mode)) return -EACCES;  // device, FIFO, socket: never opened on the host
  UniqueFd fd = reopen(node->get(), host_flags(flags));
  if (!fd && errno == EACCES && (flags & O_ACCMODE) == O_WRONLY && writeback_) {
    // A file the VMM's user may write but not read: as asked, and partial
    // page writes to it fail in the guest rather than the open.
    fd = reopen(node->get(), (host_flags(flags) & ~O_ACCMODE) | O_WRONLY);
  }
  if (!fd) return -errno;
  return add_handle(std::move(fd), false, fh);
}

int Passthrough::release(uint64_t fh, bool dir) {
  if (!handle(fh, dir)) return -EBADF;
  handles_.erase(fh);
  return 0;
}

int Passthrough::flush(uint64_t fh) {
  // Nothing to flush or unlock here (locks stay in the guest): ENOSYS has
  // a guest without OPEN stop sending FLUSH at every close().
  if (fh == 0 && implicit_files_) return -ENOSYS;
  return handle(fh, false) ? 0 : -EBADF;
}

ssize_t Passthrough::read(uint64_t nodeid, uint64_t fh, uint64_t offset, std::span<const std::span<uint8_t>> dst) {
  int err = 0;
  Handle* h = file_handle(nodeid, fh, false, err);
  if (!h) return err;
  return engine_->read(h->fd.get(), offset, dst);
}

ssize_t Passthrough::write(uint64_t nodeid, uint64_t fh, uint64_t offset,
                           std::span<const std::span<const uint8_t>> src, bool append) {
  if (opts_.read_only) return -EROFS;
  int err = 0;
  Handle* h = file_handle(nodeid, fh, true, err);
  if (!h) return err;
  // A stream is never O_APPEND: place an append at the host's end of file
  // (a handle opened O_APPEND does so whatever the offset).
  if (append && fh == 0 && !writeback_)
    return transfer_batched(src, 0, [fd = h->fd.get()](const iovec* v, int n, off_t) {
      const ssize_t r = ::pwritev2(fd, v, n, -1, RWF_APPEND);
      return r < 0 ? -errno : r;
    });
  return engine_->write(h->fd.get(), offset, src);
}

int Passthrough::create(uint64_t parent, std::string_view name, uint32_t flags, uint32_t mode,
                        fuse_entry_out& out, uint64_t& fh) {
  PathFd dir;
  if (int r = inodes_.fd(parent, dir)) return r;
  if (opts_.read_only) return -EROFS;
  if ((flags & O_ACCMODE) == O_ACCMODE) return -EINVAL;
  // A stream is read-write, whatever this open asked (see write()).
  const int base = implicit_files_ ? O_RDWR : host_flags(flags);
  // O_EXCL always: an existing name (perhaps a FIFO the host put there) is
  // never opened by create itself.
  UniqueFd fd = open_beneath(dir->get(), name, base | O_CREAT | O_EXCL | O_NOCTTY, mode & kModeMask & 0777);
  if (!fd && errno == EEXIST && !(flags & O_EXCL)) {
    fuse_entry_out e{};
    if (int r = entry_for(parent, dir->get(), name, e)) return r;
    if (int r = open_existing(e.nodeid, flags & ~static_cast<uint32_t>(O_CREAT | O_EXCL), fh)) {
      forget(e.nodeid, 1);
      return r;
    }
    out = e;
    return 0;
  }
  if (!fd) return -errno;
  return adopt_created(std::move(fd), out, fh, parent, name);
}

int Passthrough::open_existing(uint64_t nodeid, uint32_t flags, uint64_t& fh) {
  if (!implicit_files_) return open(nodeid, flags, fh);
  fh = 0;
  int err = 0;
  Handle* h = file_stream(nodeid, (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC), err);
  if (!h) return err;
  if ((flags & O_TRUNC) && ::ftruncate(h->fd.get(), 0) != 0) return -errno;
  return 0;
}

int Passthrough::adopt_created(UniqueFd fd, fuse_entry_out& out, uint64_t& fh, uint64_t parent,
                               std::string_view name) {
  // The entry is the inode just created, even if the name moved meanwhile.
  // open_tree() without OPEN_TREE_CLONE is an O_PATH open of the fd itself,
  // at half the cost of the magic link; a seccomp filter may refuse it.
  UniqueFd path(static_cast<int>(::syscall(SYS_open_tree, fd.get(), "", AT_EMPTY_PATH | OPEN_TREE_CLOEXEC)));
  if (!path) path = reopen(fd.get(), O_PATH);
  if (!path) return -errno;
  if (int r = entry_from(std::move(path), out, parent, name)) return r;
  if (implicit_files_) {
    fh = 0;
    adopt_stream(out.nodeid, std::move(fd));
    return 0;
  }
  if (int r = add_handle(std::move(fd), false, fh)) {
    inodes_.forget(out.nodeid, 1);
    return r;
  }
  return 0;
}

int Passthrough::access(uint64_t nodeid, uint32_t mask) {
  PathFd node;
  if (int r = inodes_.fd(nodeid, node)) return r;
  if (mask & ~static_cast<uint32_t>(R_OK | W_OK | X_OK)) return -EINVAL;
  struct stat st{};
  if (int r = stat_fd(node->get(), st)) return r;
  if (S_ISLNK(st.st_mode)) return 0;  // following the magic link would follow the symlink too
  if ((mask & W_OK) && opts_.read_only && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return -EROFS;
  // Through the magic link: a permission check, no open (FIFOs are safe).
  const int r = ::faccessat(proc_self_fd_.get(), proc_name(node->get()).c_str(), static_cast<int>(mask), AT_EACCESS);
  return r == 0 ? 0 : -errno;
}

}  // namespace ksbox::devices::fs
