// A passthrough filesystem of one host directory (the share root), written
// for a hostile client:
//  - inodes are O_PATH fds in an InodeTable, never paths;
//  - names are single components; every lookup is openat2(RESOLVE_BENEATH |
//    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) on the parent's fd with
//    O_NOFOLLOW, so no "..", symlink or magic link leads out of the root;
//  - only regular files and directories are ever opened for I/O: the type is
//    checked on the O_PATH fd (an fd's inode cannot change type) and the file
//    is reopened through /proc/self/fd, so device nodes, FIFOs and sockets
//    are never opened on the host;
//  - setuid/setgid are stripped from every mode the client sets;
//  - a read-only share answers EROFS to every mutating operation.
// Methods return 0 (or a byte count) on success, -errno on failure.
// Not thread-safe: one device thread drives it.
#pragma once

#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "devices/fs/inode_table.h"
#include "devices/fs/io_engine.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::fs {

struct PassthroughOptions {
  bool read_only = false;
  size_t max_inodes = 1 << 20;
  size_t max_handles = 4096;  // open files and directories together
  uint32_t entry_timeout_s = 1;
  uint32_t attr_timeout_s = 1;
};

class Passthrough {
 public:
  // Throws ksbox::Error if `root` is not a directory that can be opened.
  Passthrough(const std::string& root, PassthroughOptions opts, std::unique_ptr<IoEngine> engine);

  const PassthroughOptions& options() const { return opts_; }
  bool known(uint64_t nodeid) { return inodes_.get(nodeid) != nullptr; }
  size_t inode_count() const { return inodes_.size(); }
  size_t handle_count() const { return handles_.size(); }

  int lookup(uint64_t parent, std::string_view name, fuse_entry_out& out);
  // Returns how many of the `n` asked for were beyond the lookup count.
  uint64_t forget(uint64_t nodeid, uint64_t n) { return inodes_.forget(nodeid, n); }
  int getattr(uint64_t nodeid, fuse_attr_out& out);
  int setattr(uint64_t nodeid, const fuse_setattr_in& in, fuse_attr_out& out);
  int statfs(uint64_t nodeid, fuse_kstatfs& out);
  int readlink(uint64_t nodeid, std::string& target);

  int opendir(uint64_t nodeid, uint64_t& fh);
  // Appends fuse_dirent (or fuse_direntplus) records of at most `size`
  // bytes in total to `out`, starting after the entry whose off is `offset`.
  int readdir(uint64_t nodeid, uint64_t fh, uint64_t offset, size_t size, bool plus, std::vector<uint8_t>& out);
  int open(uint64_t nodeid, uint32_t flags, uint64_t& fh);
  int release(uint64_t fh, bool dir);
  int flush(uint64_t fh);
  int fsync(uint64_t fh, bool datasync, bool dir);
  ssize_t read(uint64_t fh, uint64_t offset, std::span<const std::span<uint8_t>> dst);
  ssize_t write(uint64_t fh, uint64_t offset, std::span<const std::span<const uint8_t>> src);

  int create(uint64_t parent, std::string_view name, uint32_t flags, uint32_t mode, fuse_entry_out& out,
             uint64_t& fh);
  int mkdir(uint64_t parent, std::string_view name, uint32_t mode, fuse_entry_out& out);
  int symlink(uint64_t parent, std::string_view name, std::string_view target, fuse_entry_out& out);
  int link(uint64_t nodeid, uint64_t newparent, std::string_view newname, fuse_entry_out& out);
  int unlink(uint64_t parent, std::string_view name);
  int rmdir(uint64_t parent, std::string_view name);
  int rename(uint64_t parent, std::string_view name, uint64_t newparent, std::string_view newname, uint32_t flags);

 private:
  struct Handle {
    UniqueFd fd;
    bool dir = false;
  };

  UniqueFd open_beneath(int dirfd, std::string_view name, int flags) const;
  UniqueFd reopen(const Inode& node, int flags) const;
  std::string proc_name(const Inode& node) const;
  int entry_for(int dirfd, std::string_view name, fuse_entry_out& out);
  int entry_from(UniqueFd path_fd, fuse_entry_out& out);
  int add_handle(UniqueFd fd, bool dir, uint64_t& fh);
  Handle* handle(uint64_t fh, bool dir);
  void fill_attr(const struct stat& st, fuse_attr& attr) const;
  int stat_node(const Inode& node, struct stat& st) const;

  PassthroughOptions opts_;
  std::unique_ptr<IoEngine> engine_;
  UniqueFd proc_self_fd_;
  InodeTable inodes_;
  std::unordered_map<uint64_t, Handle> handles_;
  uint64_t next_fh_ = 1;
};

}  // namespace ksbox::devices::fs
