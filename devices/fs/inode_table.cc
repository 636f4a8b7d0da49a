#include "devices/fs/inode_table.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "devices/fs/open_beneath.h"

namespace ksbox::devices::fs {

size_t InodeTable::KeyHash::operator()(const Key& k) const {
  // Buckets are picked by the low bits: mix all of both into them.
  uint64_t h = (uint64_t{k.ino} ^ (uint64_t{k.dev} * 0x9e3779b97f4a7c15)) * 0xbf58476d1ce4e5b9;
  return static_cast<size_t>(h ^ (h >> 31));
}

InodeTable::InodeTable(UniqueFd root, dev_t dev, ino_t ino, size_t max_inodes, size_t max_fds)
    : max_inodes_(max_inodes), max_fds_(max_fds) {
  Inode& r = allocate(dev, ino);  // slot 0: kRootId
  r.fd = new SharedFd(std::move(root));
}

Inode& InodeTable::allocate(dev_t dev, ino_t ino) {
  Inode* n;
  if (free_slots_.empty()) {
    n = &slots_.emplace_back();
    n->id = slots_.size();
  } else {
    const uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    n = &slots_[slot];
    n->id += kGeneration + slot + 1;  // drop() kept the generation, without the slot
  }
  n->dev = dev;
  n->ino = ino;
  n->nlookup = 1;
  if (by_key_.size() >= buckets_.size()) {  // at most one node per bucket on average
    std::vector<ByKey::bucket_type> more(buckets_.size() * 2);
    by_key_.rehash(ByKey::bucket_traits(more.data(), more.size()));
    buckets_.swap(more);
  }
  by_key_.insert(*n);
  return *n;
}

uint64_t InodeTable::find(dev_t dev, ino_t ino) const {
  auto it = by_key_.find(Key{dev, ino});
  return it == by_key_.end() ? 0 : it->id;
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
  n.fd = new SharedFd(std::move(fd));
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

void InodeTable::set_name(Inode& n, uint64_t parent, std::string_view name) {
  if (!n.name.empty() && n.parent == parent && n.name == name) return;
  Inode* p = nullptr;
  if (!name.empty()) {
    p = node(parent);
    // Keep the old name where this one would close a loop of parent links:
    // only a node with named children can be an ancestor of another.
    if (!p || n.id == parent || (n.children != 0 && is_ancestor(n.id, parent))) return;
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

void InodeTable::add_ref(Inode& n, uint64_t parent, std::string_view name) {
  if (n.nlookup < UINT64_MAX) ++n.nlookup;
  // The most recent name is a valid one (any of a file's hard links is).
  if (!name.empty() && n.id != kRootId) set_name(n, parent, name);
}

uint64_t InodeTable::ref_known(dev_t dev, ino_t ino, uint64_t parent, std::string_view name) {
  auto it = by_key_.find(Key{dev, ino});
  if (it == by_key_.end()) return 0;
  add_ref(*it, parent, name);
  touch(*it);
  return it->id;
}

uint64_t InodeTable::ref(UniqueFd fd, dev_t dev, ino_t ino, uint64_t parent, std::string_view name) {
  if (auto it = by_key_.find(Key{dev, ino}); it != by_key_.end()) {
    add_ref(*it, parent, name);
    if (fd) install(*it, std::move(fd));
    return it->id;
  }
  if (size() >= max_inodes_) return 0;
  Inode& n = allocate(dev, ino);
  if (!name.empty()) set_name(n, parent, name);
  install(n, std::move(fd));
  return n.id;
}

void InodeTable::renamed(uint64_t nodeid, uint64_t parent, std::string_view name) {
  Inode* n = node(nodeid);
  if (n && nodeid != kRootId && !name.empty()) set_name(*n, parent, name);
}

bool InodeTable::needs_fd_before_unname(uint64_t nodeid, uint64_t parent, std::string_view name) const {
  const Inode* n = get(nodeid);
  return n && nodeid != kRootId && !n->fd && n->parent == parent && n->name == name;
}

void InodeTable::unnamed(uint64_t nodeid, uint64_t parent, std::string_view name, UniqueFd keep) {
  Inode* n = node(nodeid);
  if (!n || nodeid == kRootId || n->name.empty() || n->parent != parent || n->name != name) return;
  set_name(*n, 0, {});
  if (keep) install(*n, std::move(keep));
  collect(*n);
}

bool InodeTable::unused(const Inode& n) {
  return n.id != kRootId && n.nlookup == 0 && n.children == 0;
}

uint64_t InodeTable::drop(Inode& n) {
  const uint64_t parent = n.name.empty() ? 0 : n.parent;
  if (n.fd) lru_of(n).erase(lru_of(n).iterator_to(n));
  by_key_.erase(by_key_.iterator_to(n));
  n.fd.reset();
  n.name.clear();
  n.parent = 0;
  free_slots_.push_back(static_cast<uint32_t>((n.id & (kGeneration - 1)) - 1));
  n.id &= ~(kGeneration - 1);  // free: no nodeid matches; allocate() bumps the generation
  return parent;
}

void InodeTable::collect(Inode& n) {
  if (unused(n)) unparent(drop(n));
}

void InodeTable::unparent(uint64_t parent) {
  // Up the chain while each parent loses its last reason to stay.
  while (parent != 0) {
    Inode* p = node(parent);
    if (!p) return;  // never: a named node keeps its parent
    --p->children;
    if (!unused(*p)) return;
    parent = drop(*p);
  }
}

uint64_t InodeTable::forget(uint64_t nodeid, uint64_t n) {
  Inode* node = this->node(nodeid);
  if (!node) return 0;
  const uint64_t dropped = std::min(n, node->nlookup);
  if (nodeid != kRootId) node->nlookup -= dropped;
  collect(*node);
  return n - dropped;
}

}  // namespace ksbox::devices::fs
