// A passthrough filesystem of one host directory (the share root), written
// for a hostile client:
//  - inodes are O_PATH fds in an InodeTable, never paths; the table keeps a
//    bounded number open and re-opens the others by verified name (see
//    inode_table.h);
//  - names are single components (valid_name: no '/', not "." or "..");
//    every lookup is open_beneath() on the parent's fd with O_NOFOLLOW, so
//    no "..", symlink or magic link leads out of the root;
//    a name that likely stands for an inode the table already holds (see
//    entry_for) is first fstatat'ed, that one component and not followed,
//    and then answered with that node, whose fd the table has or re-opens;
//  - only regular files and directories are ever opened for I/O: the type is
//    checked on the O_PATH fd (an fd's inode cannot change type) and the file
//    is reopened through /proc/self/fd, so device nodes, FIFOs and sockets
//    are never opened on the host;
//  - setuid/setgid are stripped from every mode the client sets; device
//    nodes are never created;
//  - ownership is mapped, never set: see PassthroughOptions;
//  - xattrs are limited to the user.* namespace;
//  - a read-only share answers EROFS to every mutating operation.
// Methods return 0 (or a byte count) on success, -errno on failure.
// Not thread-safe: one device thread drives it.
#pragma once

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "devices/fs/inode_table.h"
#include "devices/fs/io_engine.h"
#include "devices/fs/node_lru.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::fs {

// How much the guest may cache (virtiofsd's terms). The host may edit a
// share behind the guest's back, so the default keeps that visible: names
// and attributes for a second, file pages dropped at every open.
enum class CachePolicy : uint8_t {
  kNever,   // no name/attribute timeouts, direct I/O: every access asks the host
  kAuto,    // 1 s timeouts; the page cache is kept only while a file stays open
  kAlways,  // long timeouts, pages and directories kept across opens, writeback
            // cache: only the guest edits
  kWorktree,  // a git clone the guest works in, whose .git the host writes
              // (ksbox sync commits there): always (without writeback, so
              // the host reads every write at once) plus cached misses,
              // except inside any `.git` directory, which is auto
};
// Parses "never", "auto", "always", "worktree"; throws ksbox::Error naming
// the choices.
CachePolicy parse_cache_policy(std::string_view s);

struct PassthroughOptions {
  bool read_only = false;
  CachePolicy cache = CachePolicy::kAuto;  // sets the timeouts below: see with_cache()
  size_t max_inodes = 1 << 20;  // inodes the guest may hold (memory, not fds)
  size_t max_fds = 1 << 20;     // O_PATH fds kept open for them (an LRU)
  size_t max_handles = 4096;    // open files and directories together (and directory streams)
  uint32_t entry_timeout_s = 1;
  uint32_t attr_timeout_s = 1;
  // Offer FUSE_WRITEBACK_CACHE: the guest keeps small writes in its page
  // cache and sends them in large batches, and it owns the size and mtime
  // of files it writes (a host edit of a cached file's size is not seen).
  bool writeback = false;
  // Ownership as the guest sees it. The VMM runs as one unprivileged host
  // user: its files appear as guest_uid/guest_gid (the sandbox user), every
  // other owner as kOverflowId, so a host file of someone else never looks
  // like the sandbox user's own. The host ids default to the VMM's effective
  // ids at construction; tests override them.
  uint32_t guest_uid = 1000;
  uint32_t guest_gid = 1000;
  std::optional<uid_t> host_uid;
  std::optional<gid_t> host_gid;

  // These options with `policy` and the entry/attribute timeouts it implies.
  PassthroughOptions with_cache(CachePolicy policy) const;
  // These options with the O_PATH fd cache and the handle table shrunk, if
  // need be, so that their host fds fit in `fd_limit` with room left for
  // the rest of the VMM: inodes beyond the cache are re-opened on use, and
  // a full handle table answers ENFILE to the guest instead of the process
  // running into EMFILE.
  PassthroughOptions fit_to_fd_limit(uint64_t fd_limit) const;
  // FOPEN_* flags for an open (or create) reply under this policy, for a
  // node the host may edit (`host_edits`: kWorktree's .git) or not.
  uint32_t open_reply_flags(bool dir, bool host_edits = false) const;
  // Whether the guest may read directories without OPENDIR, which makes it
  // keep every listing (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE): under kAlways,
  // and under kWorktree, whose .git listings it then checks against the
  // directory's mtime at every open (see Passthrough::hold_back_recent_mtime).
  bool lists_without_opendir() const { return cache == CachePolicy::kAlways || cache == CachePolicy::kWorktree; }
  // And files without OPEN, which gives every file KEEP_CACHE, and .git's
  // too: a host edit there shows once the guest's attributes (auto's 1 s)
  // show a new size, or a new inode, as git's lock-and-rename updates do.
  bool opens_without_open() const { return lists_without_opendir(); }
};

class Passthrough {
 public:
  static constexpr uint32_t kOverflowId = 65534;  // "nobody", as the kernel's overflowuid

  // Throws ksbox::Error if `root` is not a directory that can be opened.
  Passthrough(const std::string& root, PassthroughOptions opts, std::unique_ptr<IoEngine> engine);

  const PassthroughOptions& options() const { return opts_; }
  // Whether this session runs with the guest's writeback cache (INIT).
  void set_writeback(bool on) { writeback_ = on; }
  bool writeback() const { return writeback_; }
  // open_reply_flags of the options, for this node.
  uint32_t open_reply_flags(uint64_t nodeid, bool dir) const {
    return opts_.open_reply_flags(dir, host_edits(nodeid));
  }
  bool known(uint64_t nodeid) const { return inodes_.known(nodeid); }
  size_t inode_count() const { return inodes_.size(); }
  size_t open_inode_fds() const { return inodes_.open_fds(); }
  size_t handle_count() const { return handles_.size(); }

  // A name that does not exist answers ENOENT, or where remembers_absent()
  // a negative entry (nodeid 0) that the guest keeps for the entry timeout:
  // compilers and module loaders probe many absent paths, untar looks up
  // every name it creates.
  int lookup(uint64_t parent, std::string_view name, fuse_entry_out& out);
  // Returns how many of the `n` asked for were beyond the lookup count.
  // A node the guest no longer holds loses its file stream.
  uint64_t forget(uint64_t nodeid, uint64_t n);
  // With `fh` (GETATTR_FH: fstat of an open file) the handle's fd answers,
  // which works even for an unlinked file whose O_PATH fd was evicted.
  int getattr(uint64_t nodeid, fuse_attr_out& out, std::optional<uint64_t> fh = std::nullopt);
  // FATTR_KILL_SUIDGID in `in.valid` clears setuid/setgid as kill_suidgid().
  int setattr(uint64_t nodeid, const fuse_setattr_in& in, fuse_attr_out& out);
  // Clears setuid, and setgid if group-executable (what Linux clears when a
  // user without CAP_FSETID writes or truncates a file), of the open file
  // `fh`: FUSE_HANDLE_KILLPRIV_V2, for requests that ask. The host kernel
  // already does it when the VMM lacks CAP_FSETID, and drops
  // security.capability on every write in any case.
  void kill_suidgid(uint64_t nodeid, uint64_t fh);
  int statfs(uint64_t nodeid, fuse_kstatfs& out);
  int readlink(uint64_t nodeid, std::string& target);

  // passthrough_dirs.cc
  // Whether the guest reads directories without opening them: it offered
  // FUSE_NO_OPENDIR_SUPPORT and the policy keeps listings
  // (PassthroughOptions::lists_without_opendir). OPENDIR then answers
  // ENOSYS, which the guest takes as "never ask again"; READDIR(PLUS) and
  // FSYNCDIR come with fh 0 and no RELEASEDIR follows.
  void set_implicit_dirs(bool on) { implicit_dirs_ = on; }
  bool implicit_dirs() const { return implicit_dirs_; }
  size_t dir_stream_count() const { return dir_streams_.size(); }  // within max_handles, with handle_count()
  int opendir(uint64_t nodeid, uint64_t& fh);
  // Appends fuse_dirent (or fuse_direntplus) records of at most `size`
  // bytes in total to `out`, starting after the entry whose off is `offset`.
  int readdir(uint64_t nodeid, uint64_t fh, uint64_t offset, size_t size, bool plus, std::vector<uint8_t>& out);
  int fsync(uint64_t nodeid, uint64_t fh, bool datasync, bool dir);

  int open(uint64_t nodeid, uint32_t flags, uint64_t& fh);
  int release(uint64_t fh, bool dir);
  // ENOSYS for fh 0 with implicit_files (the guest then stops sending it).
  int flush(uint64_t fh);
  // The file I/O below acts on the handle `fh` from OPEN or CREATE, or with
  // implicit_files and fh 0 on the node's file stream (passthrough_files.cc).
  ssize_t read(uint64_t nodeid, uint64_t fh, uint64_t offset, std::span<const std::span<uint8_t>> dst);
  // `append`: the guest opened the file O_APPEND; on a stream (which is not)
  // the data goes to the host's end of file, as it would through the handle.
  ssize_t write(uint64_t nodeid, uint64_t fh, uint64_t offset, std::span<const std::span<const uint8_t>> src,
                bool append = false);

  int create(uint64_t parent, std::string_view name, uint32_t flags, uint32_t mode, fuse_entry_out& out,
             uint64_t& fh);
  int mkdir(uint64_t parent, std::string_view name, uint32_t mode, fuse_entry_out& out);
  int symlink(uint64_t parent, std::string_view name, std::string_view target, fuse_entry_out& out);
  int link(uint64_t nodeid, uint64_t newparent, std::string_view newname, fuse_entry_out& out);
  int unlink(uint64_t parent, std::string_view name);
  int rmdir(uint64_t parent, std::string_view name);
  int rename(uint64_t parent, std::string_view name, uint64_t newparent, std::string_view newname, uint32_t flags);
  // Regular files, FIFOs and sockets; device nodes are -EPERM.
  int mknod(uint64_t parent, std::string_view name, uint32_t mode, fuse_entry_out& out);
  // Answered by the host for the VMM's user, which does the I/O.
  int access(uint64_t nodeid, uint32_t mask);

  // passthrough_data.cc
  // An unnamed file in `parent` (O_TMPFILE), opened; LINK may name it.
  int tmpfile(uint64_t parent, uint32_t flags, uint32_t mode, fuse_entry_out& out, uint64_t& fh);
  int fallocate(uint64_t nodeid, uint64_t fh, uint32_t mode, uint64_t offset, uint64_t length);
  int lseek(uint64_t nodeid, uint64_t fh, uint64_t offset, uint32_t whence, uint64_t& result);
  ssize_t copy_file_range(uint64_t node_in, uint64_t fh_in, uint64_t off_in, uint64_t node_out, uint64_t fh_out,
                          uint64_t off_out, size_t len, uint64_t flags);

  // passthrough_files.cc
  // Whether the guest uses files without opening them: it offered
  // FUSE_NO_OPEN_SUPPORT and the policy keeps pages
  // (PassthroughOptions::opens_without_open). OPEN then answers ENOSYS,
  // which the guest takes as "never ask again", and FLUSH too; file I/O
  // comes with fh 0, CREATE and TMPFILE answer fh 0, and no RELEASE follows.
  void set_implicit_files(bool on) { implicit_files_ = on; }
  bool implicit_files() const { return implicit_files_; }
  size_t file_stream_count() const { return file_streams_.size(); }  // within max_handles, with handle_count()

  // passthrough_xattr.cc: user.* only, on regular files and directories.
  // With size 0, the length the value (or the name list) would take;
  // otherwise the value in `out` (at most `size` bytes, else -ERANGE).
  ssize_t getxattr(uint64_t nodeid, std::string_view name, size_t size, std::vector<uint8_t>& out);
  ssize_t listxattr(uint64_t nodeid, size_t size, std::vector<uint8_t>& out);
  int setxattr(uint64_t nodeid, std::string_view name, std::span<const uint8_t> value, uint32_t flags);
  int removexattr(uint64_t nodeid, std::string_view name);

 private:
  struct Handle {
    UniqueFd fd;
    bool dir = false;
    // Directories: getdents records read from the host but not yet sent,
    // and the offset the guest resumes at when it continues. Continuing
    // needs no lseek: on tmpfs (before Linux 6.6) a directory offset is a
    // position, so seeking after the guest deleted entries (rm -rf) would
    // skip others.
    std::vector<uint8_t> dirbuf;
    size_t dirbuf_pos = 0, dirbuf_len = 0;
    uint64_t dir_next_off = 0;
  };

  static constexpr uint32_t kModeMask = 07777 & ~(S_ISUID | S_ISGID);
  // Open flags passed through to the host; the rest (O_CREAT, O_EXCL,
  // O_NOATIME, O_DIRECT, O_PATH, ...) are decided here, not by the guest.
  static constexpr int kOpenFlagsPassed = O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DSYNC | O_SYNC;

  // What the guest names as `name` in `parent` right now, as far as the
  // inode table knows it: the node (0 if none), and an fd to keep it by if
  // removing this name would leave an evicted node without any.
  struct Named {
    uint64_t node = 0;
    UniqueFd keep;
  };

  UniqueFd reopen(int path_fd, int flags) const;
  // The host's open flags for the guest's `flags` (see kOpenFlagsPassed).
  int host_flags(uint32_t flags) const;
  static std::string proc_name(int path_fd) { return std::to_string(path_fd); }
  // Whether the host may change the node behind the guest (kWorktree: it
  // is in a .git directory, or is one), so that it gets auto's timeouts.
  bool host_edits(uint64_t nodeid) const;
  struct Timeouts {
    uint32_t entry_s, attr_s;
  };
  // The node's entry and attribute timeouts (one walk of its names).
  Timeouts timeouts(uint64_t nodeid) const;
  // Whether LOOKUP answers the absent `name` in `parent` with a negative
  // entry: under kAuto (for its 1 s) and under kWorktree outside .git.
  bool remembers_absent(uint64_t parent, std::string_view name) const;
  // The entry for `name` in the directory `dirfd` (the node `parent`),
  // adding a lookup reference. `maybe_known`: try a known node first.
  int entry_for(uint64_t parent, int dirfd, std::string_view name, fuse_entry_out& out, bool maybe_known = false);
  // The entry for the inode `path_fd`, known as (parent, name) if named.
  int entry_from(UniqueFd path_fd, fuse_entry_out& out, uint64_t parent = 0, std::string_view name = {});
  // An entry reply for the node with the attributes `st`.
  void fill_entry(uint64_t nodeid, const struct stat& st, fuse_entry_out& out) const;
  // With implicit_dirs the guest keeps worktree's .git listings too. At an
  // open of the directory it refreshes attributes older than their 1 s (the
  // permission check: virtiofs has default_permissions), and reads the
  // listing afresh if the mtime is no longer the one it read it at. A host
  // change within the timestamp tick of that mtime would keep it, and the
  // stale listing for good: so while a .git directory's mtime is recent
  // (a tick of the host's clock, 50 ms; 2 s for whole-second mtimes), the
  // guest is told one 1 ns earlier, and a second later the real one, a
  // change, which has it read the listing again.
  void hold_back_recent_mtime(uint64_t nodeid, const struct stat& st, fuse_attr& attr) const;
  Named named(uint64_t parent, int dirfd, std::string_view name);
  // unlinkat(flags) of `name` in `parent`, and the table told.
  int remove_name(uint64_t parent, std::string_view name, int flags);
  // OPEN of an existing file for CREATE: a handle, or with implicit_files
  // fh 0 and the node's stream (truncated for O_TRUNC).
  int open_existing(uint64_t nodeid, uint32_t flags, uint64_t& fh);
  // The entry and a handle for a file just created as `fd` (named `name` in
  // `parent`, or unnamed); with implicit_files fh 0, `fd` its stream.
  int adopt_created(UniqueFd fd, fuse_entry_out& out, uint64_t& fh, uint64_t parent = 0,
                    std::string_view name = {});
  int add_handle(UniqueFd fd, bool dir, uint64_t& fh);
  Handle* handle(uint64_t fh, bool dir);
  // A directory read with fh 0 (implicit_dirs): one stream per directory,
  // the most recently read kept, so a guest reading several at once (find,
  // rm -rf, which deletes as it goes) continues each where it stopped, with
  // no seek (see Handle).
  static constexpr size_t kMaxDirStreams = 64;
  Handle* dir_stream(uint64_t nodeid, int& err);
  // The node's directory, opened for reading.
  int open_dir(uint64_t nodeid, UniqueFd& out);
  // A file's I/O handle: `fh`, or with implicit_files and fh 0 the node's
  // stream, able to `write` or read; else null and `err`.
  Handle* file_handle(uint64_t nodeid, uint64_t fh, bool write, int& err);
  // A file used with fh 0 (implicit_files): one host fd per node, opened
  // read-write where the host allows (else read-only, else write-only) and
  // kept for the most recently used nodes. `write`: the caller will write.
  struct FileStream {
    Handle h;
    int access;  // O_RDONLY, O_WRONLY or O_RDWR
  };
  static constexpr size_t kMaxFileStreams = 256;
  Handle* file_stream(uint64_t nodeid, bool write, int& err);
  // The node's regular file opened for I/O: read-write, or what the host
  // lets the VMM's user have. Never a FIFO, device or directory.
  int open_stream(uint64_t nodeid, bool write, UniqueFd& out, int& access);
  // Whether one more stream fits: the oldest beyond kMaxFileStreams goes,
  // then room_for_fd().
  bool room_for_stream();
  // Keeps `fd` (just created, read-write) as the new node's stream.
  void adopt_stream(uint64_t nodeid, UniqueFd fd);
  // Whether another host fd fits the handle table, which directory and
  // file streams share with the open handles: if need be the oldest
  // stream gives way (never the file stream just used).
  bool room_for_fd();
  void fill_attr(const struct stat& st, fuse_attr& attr) const;
  static int stat_fd(int path_fd, struct stat& st);
  // The /proc path of a regular file or directory for the xattr calls (valid
  // while `fd` is held); `special` (and no path) for any other type.
  int xattr_path(uint64_t nodeid, PathFd& fd, std::string& path, bool& special);
  // The same for a named attribute, after the refusals every named call
  // shares: unknown node, a change on a read-only share, not user.*.
  int xattr_named(uint64_t nodeid, std::string_view name, bool change, PathFd& fd, std::string& path,
                  bool& special);

  PassthroughOptions opts_;
  uid_t host_uid_;
  gid_t host_gid_;
  std::unique_ptr<IoEngine> engine_;
  UniqueFd proc_self_fd_;
  InodeTable inodes_;
  std::unordered_map<uint64_t, Handle> handles_;
  NodeLru<Handle> dir_streams_;
  bool implicit_dirs_ = false;
  NodeLru<FileStream> file_streams_;
  bool implicit_files_ = false;
  uint64_t next_fh_ = 1;
  bool writeback_ = false;
};

}  // namespace ksbox::devices::fs
