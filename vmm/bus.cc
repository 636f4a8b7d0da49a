#include "vmm/bus.h"

#include <cstring>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox {

void Bus::add(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> dev) {
  if (len == 0 || base + len < base)
    throw Error(fmt::format("{} bus: bad range [{:#x}, +{:#x})", name_, base, len));
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first < base + len)
    throw Error(fmt::format("{} bus: [{:#x}, +{:#x}) overlaps a device at {:#x}", name_, base, len,
                            next->first));
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.len > base)
      throw Error(fmt::format("{} bus: [{:#x}, +{:#x}) overlaps a device at {:#x}", name_, base, len,
                              prev->first));
  }
  ranges_.emplace(base, Range{len, std::move(dev)});
}

std::pair<BusDevice*, uint64_t> Bus::find(uint64_t addr, uint64_t len) const {
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return {nullptr, 0};
  --it;
  const uint64_t off = addr - it->first;
  if (off >= it->second.len || len > it->second.len - off) return {nullptr, 0};
  return {it->second.dev.get(), off};
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) {
  auto [dev, off] = find(addr, data.size());
  if (!dev) {
    std::memset(data.data(), 0xff, data.size());
    unhandled_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  dev->read(off, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) {
  auto [dev, off] = find(addr, data.size());
  if (!dev) {
    unhandled_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  dev->write(off, data);
  return true;
}

}  // namespace ksbox
