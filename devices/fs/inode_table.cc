#include "devices/fs/inode_table.h"

#include <algorithm>

namespace ksbox::devices::fs {

InodeTable::InodeTable(UniqueFd root, dev_t dev, ino_t ino, size_t max_inodes) : max_inodes_(max_inodes) {
  Inode r;
  r.fd = std::move(root);
  r.dev = dev;
  r.ino = ino;
  r.nlookup = 1;
  nodes_.emplace(kRootId, std::move(r));
  by_key_.emplace(Key{dev, ino}, kRootId);
}

Inode* InodeTable::get(uint64_t nodeid) {
  auto it = nodes_.find(nodeid);
  return it == nodes_.end() ? nullptr : &it->second;
}

uint64_t InodeTable::ref(UniqueFd fd, dev_t dev, ino_t ino) {
  if (auto it = by_key_.find(Key{dev, ino}); it != by_key_.end()) {
    Inode& node = nodes_.at(it->second);
    if (node.nlookup < UINT64_MAX) ++node.nlookup;
    return it->second;  // `fd` (a second handle on the same inode) closes here
  }
  if (nodes_.size() >= max_inodes_) return 0;
  const uint64_t id = next_id_++;
  Inode node;
  node.fd = std::move(fd);
  node.dev = dev;
  node.ino = ino;
  node.nlookup = 1;
  nodes_.emplace(id, std::move(node));
  by_key_.emplace(Key{dev, ino}, id);
  return id;
}

uint64_t InodeTable::forget(uint64_t nodeid, uint64_t n) {
  auto it = nodes_.find(nodeid);
  if (it == nodes_.end()) return 0;
  Inode& node = it->second;
  const uint64_t dropped = std::min(n, node.nlookup);
  node.nlookup -= dropped;
  if (node.nlookup == 0 && nodeid != kRootId) {
    by_key_.erase(Key{node.dev, node.ino});
    nodes_.erase(it);
  }
  return n - dropped;
}

}  // namespace ksbox::devices::fs
