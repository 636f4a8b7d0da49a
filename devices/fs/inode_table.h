// nodeid → host inode, held as an O_PATH fd (never a path), with the
// kernel's lookup count. Counts from FORGET are clamped: a guest cannot make
// one underflow, and the root (nodeid 1) is never dropped.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <unordered_map>

#include "vmm/unique_fd.h"

namespace ksbox::devices::fs {

struct Inode {
  UniqueFd fd;  // O_PATH | O_NOFOLLOW
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t nlookup = 0;
};

class InodeTable {
 public:
  static constexpr uint64_t kRootId = 1;  // FUSE_ROOT_ID

  InodeTable(UniqueFd root, dev_t dev, ino_t ino, size_t max_inodes);

  Inode* get(uint64_t nodeid);
  // Adds one lookup reference to the inode (dev, ino), taking `fd` if it
  // is new; the nodeid, or 0 when the table is full.
  uint64_t ref(UniqueFd fd, dev_t dev, ino_t ino);
  // Drops up to `n` references; returns how many asked for were beyond the
  // count (0 for an honest guest). Unknown nodeids are ignored.
  uint64_t forget(uint64_t nodeid, uint64_t n);
  size_t size() const { return nodes_.size(); }

 private:
  struct Key {
    dev_t dev;
    ino_t ino;
    auto operator<=>(const Key&) const = default;
  };
  std::unordered_map<uint64_t, Inode> nodes_;
  std::map<Key, uint64_t> by_key_;
  uint64_t next_id_ = kRootId + 1;
  size_t max_inodes_;
};

}  // namespace ksbox::devices::fs
