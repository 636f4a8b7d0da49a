#include "devices/fs/inode_table.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "devices/fs/open_beneath.h"

namespace ksbox::devices::fs {

InodeTable::InodeTable(UniqueFd root, dev_t dev, ino_t ino, size_t max_inodes, size_t max_fds)
    : max_inodes_(max_inodes), max_fds_(max_fds) {
  Inode r;
  r.fd = std::make_shared<const UniqueFd>(std::move(root));
  r.dev = dev;
  r.ino = ino;
  r.nlookup = 1;
  nodes_.emplace(kRootId, std::move(r));
  by_key_.emplace(Key{dev, ino}, kRootId);
}

Inode* InodeTable::node(uint64_t nodeid) {
  auto it = nodes_.find(nodeid);
  return it == nodes_.end() ? nullptr : &it->second;
}

const Inode* InodeTable::get(uint64_t nodeid) const {
  auto it = nodes_.find(nodeid);
  return it == nodes_.end() ? nullptr : &it->second;
}

uint64_t InodeTable::find(dev_t dev, ino_t ino) const {
  auto it = by_key_.find(Key{dev, ino});
  return it == by_key_.end() ? 0 : it->second;
}

void InodeTable::touch(Inode& n) {
  if (!n.lru.is_linked()) return;  // no fd, or the root's
  auto& l = lru_of(n);
  l.splice(l.begin(), l, l.iterator_to(n));
}

void InodeTable::evict_one() {
  auto& l = named_lru_.empty() ? unnamed_lru_ : named_lru_;
  if (l.empty()) return;
  Inode& victim = l.back();
  l.pop_back();
  victim.fd.reset();  // a caller still holding a copy keeps it open until done
}

const PathFd& InodeTable::install(Inode& n, UniqueFd fd) {
  if (n.fd) {
    touch(n);
    return n.fd;  // `fd`, a second handle on the same inode, closes here
  }
  while (open_fds() >= max_fds_ && open_fds() > 0) evict_one();
  n.fd = std::make_shared<const UniqueFd>(std::move(fd));
  lru_of(n).push_front(n);
  return n.fd;
}

int InodeTable::fd(uint64_t nodeid, PathFd& out) {
  Inode* n = node(nodeid);
  if (!n) return -ESTALE;
  if (n->fd) {
    touch(*n);
    out = n->fd;
    return 0;
  }
  // Up to the nearest ancestor still open, then down again by name.
  std::vector<uint64_t> chain;
  uint64_t id = nodeid;
  for (Inode* c = n; !c->fd;) {
    if (c->name.empty() || chain.size() >= kMaxDepth) return -ESTALE;
    chain.push_back(id);
    id = c->parent;
    c = node(id);
    if (!c) return -ESTALE;  // never: a named node keeps its parent
  }
  Inode& top = *node(id);
  touch(top);
  PathFd dir = top.fd;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    Inode& c = *node(*it);  // installs below evict fds, never nodes
    UniqueFd f = open_beneath(dir->get(), c.name, O_PATH);
    if (!f) {
      switch (errno) {
        case EMFILE: case ENFILE: return -ENFILE;
        case EACCES: case ENOMEM: return -errno;
        default: return -ESTALE;  // gone, moved, now a symlink, outside: not this inode any more
      }
    }
    struct stat st{};
    if (::fstat(f.get(), &st) != 0) return -errno;
    if (st.st_dev != c.dev || st.st_ino != c.ino) return -ESTALE;
    dir = install(c, std::move(f));
  }
  out = std::move(dir);
  return 0;
}

bool InodeTable::is_ancestor(uint64_t maybe_ancestor, uint64_t nodeid) const {
  for (size_t depth = 0; depth <= kMaxDepth; ++depth) {
    if (nodeid == maybe_ancestor) return true;
    const Inode* n = get(nodeid);
    if (!n || n->name.empty()) return false;
    nodeid = n->parent;
  }
  return true;  // deeper than re-opening would follow: treat as a loop
}

bool InodeTable::within_dir_named(uint64_t nodeid, std::string_view name) const {
  for (size_t depth = 0; depth <= kMaxDepth; ++depth) {
    const Inode* n = get(nodeid);
    if (!n || n->name.empty()) return false;
    if (n->name == name) return true;
    nodeid = n->parent;
  }
  return true;  // deeper than re-opening would follow: the cautious answer
}

void InodeTable::set_name(uint64_t nodeid, uint64_t parent, std::string_view name) {
  Inode& n = nodes_.at(nodeid);
  if (!n.name.empty() && n.parent == parent && n.name == name) return;
  Inode* p = nullptr;
  if (!name.empty()) {
    p = node(parent);
    // Keep the old name where this one would close a loop of parent links:
    // only a node with named children can be an ancestor of another.
    if (!p || nodeid == parent || (n.children != 0 && is_ancestor(nodeid, parent))) return;
  }
  const bool was_named = !n.name.empty();
  const uint64_t old_parent = n.parent;
  auto& from = lru_of(n);
  if (p) ++p->children;
  n.parent = name.empty() ? 0 : parent;
  n.name.assign(name);
  if (n.fd) {
    auto& to = lru_of(n);
    to.splice(to.begin(), from, from.iterator_to(n));
  }
  if (was_named) unparent(old_parent);
}

void InodeTable::add_ref(uint64_t id, Inode& n, uint64_t parent, std::string_view name) {
  if (n.nlookup < UINT64_MAX) ++n.nlookup;
  // The most recent name is a valid one (any of a file's hard links is).
  if (!name.empty() && id != kRootId) set_name(id, parent, name);
}

uint64_t InodeTable::ref_known(dev_t dev, ino_t ino, uint64_t parent, std::string_view name) {
  auto it = by_key_.find(Key{dev, ino});
  if (it == by_key_.end()) return 0;
  const uint64_t id = it->second;
  Inode& n = nodes_.at(id);
  add_ref(id, n, parent, name);
  touch(n);
  return id;
}

uint64_t InodeTable::ref(UniqueFd fd, dev_t dev, ino_t ino, uint64_t parent, std::string_view name) {
  auto [key, added] = by_key_.try_emplace(Key{dev, ino}, next_id_);
  if (!added) {
    const uint64_t id = key->second;
    Inode& n = nodes_.at(id);
    add_ref(id, n, parent, name);
    if (fd) install(n, std::move(fd));
    return id;
  }
  if (nodes_.size() >= max_inodes_) {
    by_key_.erase(key);
    return 0;
  }
  const uint64_t id = next_id_++;
  Inode& n = nodes_.try_emplace(id).first->second;
  n.dev = dev;
  n.ino = ino;
  n.nlookup = 1;
  if (!name.empty()) set_name(id, parent, name);
  install(n, std::move(fd));
  return id;
}

void InodeTable::renamed(uint64_t nodeid, uint64_t parent, std::string_view name) {
  if (nodeid != kRootId && known(nodeid) && !name.empty()) set_name(nodeid, parent, name);
}

bool InodeTable::needs_fd_before_unname(uint64_t nodeid, uint64_t parent, std::string_view name) const {
  const Inode* n = get(nodeid);
  return n && nodeid != kRootId && !n->fd && n->parent == parent && n->name == name;
}

void InodeTable::unnamed(uint64_t nodeid, uint64_t parent, std::string_view name, UniqueFd keep) {
  Inode* n = node(nodeid);
  if (!n || nodeid == kRootId || n->name.empty() || n->parent != parent || n->name != name) return;
  set_name(nodeid, 0, {});
  if (keep) install(*n, std::move(keep));
  collect(nodeid);
}

void InodeTable::collect(uint64_t nodeid) {
  if (nodeid == kRootId) return;
  auto it = nodes_.find(nodeid);
  if (it != nodes_.end()) collect(it);
}

bool InodeTable::unused(NodeIt it) {
  const Inode& n = it->second;
  return it->first != kRootId && n.nlookup == 0 && n.children == 0;
}

uint64_t InodeTable::drop(NodeIt it) {
  Inode& n = it->second;
  const uint64_t parent = n.name.empty() ? 0 : n.parent;
  if (n.fd) lru_of(n).erase(lru_of(n).iterator_to(n));
  by_key_.erase(Key{n.dev, n.ino});
  nodes_.erase(it);
  return parent;
}

void InodeTable::collect(NodeIt it) {
  if (unused(it)) unparent(drop(it));
}

void InodeTable::unparent(uint64_t parent) {
  // Up the chain while each parent loses its last reason to stay.
  while (parent != 0) {
    auto it = nodes_.find(parent);
    if (it == nodes_.end()) return;  // never: a named node keeps its parent
    --it->second.children;
    if (!unused(it)) return;
    parent = drop(it);
  }
}

uint64_t InodeTable::forget(uint64_t nodeid, uint64_t n) {
  auto it = nodes_.find(nodeid);
  if (it == nodes_.end()) return 0;
  Inode& node = it->second;
  const uint64_t dropped = std::min(n, node.nlookup);
  if (nodeid != kRootId) node.nlookup -= dropped;
  collect(it);
  return n - dropped;
}

}  // namespace ksbox::devices::fs
