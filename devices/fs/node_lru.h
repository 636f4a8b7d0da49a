// One value per node for the most recently used nodes (Passthrough's
// directory and file streams), found, used and dropped by nodeid in O(1):
// every READ or WRITE with fh 0 looks its node up and every FORGET drops
// it, where a walk of the list could pass over all of it per request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <utility>

namespace ksbox::devices::fs {

template <typename T>
class NodeLru {
 public:
  // The node's value, now the most recently used; nullptr if it has none.
  T* use(uint64_t nodeid) {
    const auto it = index_.find(nodeid);
    if (it == index_.end()) return nullptr;
    items_.splice(items_.begin(), items_, it->second);  // iterators stay valid
    return &items_.front().value;
  }
  // `value` as the node's, the most recently used (replacing any it had).
  T& push_front(uint64_t nodeid, T value) {
    erase(nodeid);
    items_.push_front(Item{nodeid, std::move(value)});
    index_.emplace(nodeid, items_.begin());
    return items_.front().value;
  }
  // Drops the least recently used value, if any.
  void pop_back() {
    if (items_.empty()) return;
    index_.erase(items_.back().nodeid);
    items_.pop_back();
  }
  void erase(uint64_t nodeid) {
    if (index_.empty()) return;  // every FORGET asks: spare it the hashing
    const auto it = index_.find(nodeid);
    if (it == index_.end()) return;
    items_.erase(it->second);
    index_.erase(it);
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

 private:
  struct Item {
    uint64_t nodeid;
    T value;
  };
  std::list<Item> items_;  // most recently used first
  std::unordered_map<uint64_t, typename std::list<Item>::iterator> index_;
};

}  // namespace ksbox::devices::fs
