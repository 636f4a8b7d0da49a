// nodeid → host inode, with the kernel's lookup count. Counts from FORGET
// are clamped: a guest cannot make one underflow, and the root (nodeid 1)
// is never dropped.
//
// Host fd use is bounded independently of how many inodes the guest holds:
// each inode's O_PATH fd is a cache entry (at most `max_fds` open, least
// recently used evicted first). An evicted inode keeps a name it had,
// (parent nodeid, component), and is re-opened through its parent chain
// from the nearest ancestor still open (the root at worst): each step is a
// single-component open_beneath() (no "..", no symlinks, no magic links)
// checked against the recorded (dev, ino). A mismatch or a vanished name
// (renamed or replaced on the host behind the server's back) is ESTALE.
// Renames and unlinks done through the server keep names current (see
// renamed() / unnamed()); of a file's hard links any one name serves.
// A parent stays in the table while a named child refers to it. Inodes
// with no name (unlinked, O_TMPFILE) are evicted only after every named one.
#pragma once

#include <sys/types.h>

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <boost/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vmm/unique_fd.h"

namespace ksbox::devices::fs {

// An inode's O_PATH fd, shared so that a caller's copy stays open while
// other lookups evict the table's. Counted without atomics: the server
// that owns the table serves one request at a time (VirtioFs holds its lock).
struct SharedFd : UniqueFd, boost::intrusive_ref_counter<SharedFd, boost::thread_unsafe_counter> {
  explicit SharedFd(UniqueFd fd) : UniqueFd(std::move(fd)) {}
};
using PathFd = boost::intrusive_ptr<const SharedFd>;

struct Inode {
  PathFd fd;  // O_PATH | O_NOFOLLOW; null while evicted
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t nlookup = 0;
  uint64_t parent = 0;    // with `name`: where it can be re-opened
  std::string name;       // empty: no known name
  uint64_t children = 0;  // named nodes whose parent this is
  // In an LRU list while fd is set (never the root's), and in the table's
  // (dev, ino) index while in use; intrusive, so that a node costs no
  // allocation of its own beyond its fd's.
  boost::intrusive::list_member_hook<> lru;
  boost::intrusive::unordered_set_member_hook<> by_key;
  uint64_t id = 0;  // its nodeid; only the generation bits while its slot is free
};

class InodeTable {
 public:
  static constexpr uint64_t kRootId = 1;  // FUSE_ROOT_ID
  static constexpr size_t kMaxDepth = 4096;  // parent links followed when re-opening

  InodeTable(UniqueFd root, dev_t dev, ino_t ino, size_t max_inodes, size_t max_fds);

  const Inode* get(uint64_t nodeid) const;  // null if not a node in use
  bool known(uint64_t nodeid) const { return get(nodeid) != nullptr; }
  // The node's O_PATH fd, re-opened by name if it was evicted: 0, or
  // -ESTALE (unknown node, no name, name gone or now another inode),
  // -ENFILE (out of descriptors), another -errno from the host.
  int fd(uint64_t nodeid, PathFd& out);
  // Adds one lookup reference to the inode (dev, ino) found as `name` in
  // `parent` (an empty name: unnamed), taking `fd` if the table has none
  // open for it; the nodeid, or 0 when the table is full.
  uint64_t ref(UniqueFd fd, dev_t dev, ino_t ino, uint64_t parent = 0, std::string_view name = {});
  // ref() of a node the table already holds, without an fd: 0 if (dev, ino)
  // is not one (then the caller opens it and calls ref()).
  uint64_t ref_known(dev_t dev, ino_t ino, uint64_t parent, std::string_view name);
  // The nodeid of (dev, ino), 0 if none.
  uint64_t find(dev_t dev, ino_t ino) const;
  // `nodeid` is now reachable as `name` in `parent` (a rename through the
  // server). Ignored if that would make the parent links a cycle.
  void renamed(uint64_t nodeid, uint64_t parent, std::string_view name);
  // The name (parent, name) is gone (unlinked, replaced): a node known by
  // it loses it. `keep`, if valid, is an fd of the node opened before, kept
  // so the node still works while the guest holds it.
  void unnamed(uint64_t nodeid, uint64_t parent, std::string_view name, UniqueFd keep);
  // Whether the node's fd is evicted and its name is (parent, name): then a
  // caller about to remove that name should open it first for unnamed().
  bool needs_fd_before_unname(uint64_t nodeid, uint64_t parent, std::string_view name) const;
  // Whether the node or one of its ancestors, by the names known for them,
  // is called `name` (a node without a name has no ancestors).
  bool within_dir_named(uint64_t nodeid, std::string_view name) const;
  // Drops up to `n` references; returns how many asked for were beyond the
  // count (0 for an honest guest). Unknown nodeids are ignored.
  uint64_t forget(uint64_t nodeid, uint64_t n);
  size_t size() const { return by_key_.size(); }
  size_t open_fds() const { return named_lru_.size() + unnamed_lru_.size(); }  // the root's aside
  size_t max_fds() const { return max_fds_; }

 private:
  // A nodeid is a slot in `slots_` (low 32 bits, plus one: the root's slot
  // 0 is FUSE_ROOT_ID) and that slot's generation (high 32 bits), bumped
  // each time the slot is reused: found without hashing, and not handed out
  // again until the generation wraps. Slots are kept for reuse, so the
  // table's memory is that of the most nodes it ever held at once.
  static constexpr uint64_t kGeneration = uint64_t{1} << 32;

  struct Key {
    dev_t dev;
    ino_t ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct KeyOf {
    using type = Key;
    Key operator()(const Inode& n) const { return {n.dev, n.ino}; }
  };
  using ByKey = boost::intrusive::unordered_set<
      Inode, boost::intrusive::member_hook<Inode, boost::intrusive::unordered_set_member_hook<>, &Inode::by_key>,
      boost::intrusive::key_of_value<KeyOf>, boost::intrusive::hash<KeyHash>, boost::intrusive::power_2_buckets<true>>;
  using Lru = boost::intrusive::list<Inode, boost::intrusive::member_hook<Inode, boost::intrusive::list_member_hook<>, &Inode::lru>>;

  Inode* node(uint64_t nodeid) { return const_cast<Inode*>(std::as_const(*this).get(nodeid)); }
  // A node in a free slot (or a new one) for (dev, ino), indexed, count 1.
  Inode& allocate(dev_t dev, ino_t ino);
  Lru& lru_of(const Inode& n) { return n.name.empty() ? unnamed_lru_ : named_lru_; }
  // Caches `fd` as the node's, evicting the least recently used first.
  const PathFd& install(Inode& n, UniqueFd fd);
  void evict_one();
  void touch(Inode& n);
  // Adds a reference to the existing node `n`, named (parent, name) if set.
  void add_ref(Inode& n, uint64_t parent, std::string_view name);
  // Sets or clears (parent, name), keeping child counts and LRU lists right.
  void set_name(Inode& n, uint64_t parent, std::string_view name);
  bool is_ancestor(uint64_t maybe_ancestor, uint64_t nodeid) const;
  // Removes the node if it has no lookups and no named children, and so on
  // up the parent chain.
  void collect(Inode& n);
  // A named child of `parent` is gone: one child fewer, and the parent
  // collected (and so on up) if that was what kept it.
  void unparent(uint64_t parent);
  // Whether the node has no lookups and no named children (never the root).
  static bool unused(const Inode& n);
  // Frees the node's slot; returns its parent if it was named, else 0.
  uint64_t drop(Inode& n);

  std::deque<Inode> slots_;  // a deque: nodes never move, as the hooks need
  std::vector<uint32_t> free_slots_;
  std::vector<ByKey::bucket_type> buckets_{64};
  ByKey by_key_{ByKey::bucket_traits(buckets_.data(), buckets_.size())};
  Lru named_lru_, unnamed_lru_;  // most recently used first; after slots_, so gone before them
  size_t max_inodes_;
  size_t max_fds_;
};

// Inline: every request asks it, several times.
inline const Inode* InodeTable::get(uint64_t nodeid) const {
  const uint64_t slot = (nodeid & (kGeneration - 1)) - 1;  // nodeid 0: beyond any slot
  if (slot >= slots_.size()) return nullptr;
  const Inode& n = slots_[slot];
  return n.id == nodeid ? &n : nullptr;
}

}  // namespace ksbox::devices::fs
