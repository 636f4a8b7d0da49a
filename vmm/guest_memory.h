// Guest physical memory. Every access goes through a bounds-checked slice:
// guest-supplied addresses and lengths are untrusted.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "vmm/mmap_region.h"

namespace ksbox {

// A guest physical address; deliberately not convertible to/from integers implicitly.
class GuestAddress {
 public:
  constexpr GuestAddress() = default;
  constexpr explicit GuestAddress(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  // Offset without wrap-around; nullopt when addr + off overflows.
  constexpr std::optional<GuestAddress> checked_add(uint64_t off) const {
    if (off > UINT64_MAX - v_) return std::nullopt;
    return GuestAddress(v_ + off);
  }
  constexpr auto operator<=>(const GuestAddress&) const = default;

 private:
  uint64_t v_ = 0;
};

struct GuestRegion {
  GuestAddress start;
  uint64_t size;
  uint8_t* host;  // host mapping of `start`
};

class GuestMemory {
 public:
  // One anonymous mapping split into regions at the given guest addresses.
  // Ranges must not overlap; sizes are page multiples.
  struct Layout {
    GuestAddress start;
    uint64_t size;
  };
  explicit GuestMemory(const std::vector<Layout>& layout);

  // Host view of [addr, addr+len) if it lies wholly inside one region.
  std::optional<std::span<uint8_t>> slice(GuestAddress addr, uint64_t len) const;
  // Same, for loaders: throws Error naming `what` when out of range.
  std::span<uint8_t> slice_or_throw(GuestAddress addr, uint64_t len, const char* what) const;

  template <typename T>
  std::optional<T> read_obj(GuestAddress addr) const {
    static_assert(std::is_trivially_copyable_v<T>);
    auto s = slice(addr, sizeof(T));
    if (!s) return std::nullopt;
    T v;
    std::memcpy(&v, s->data(), sizeof(T));
    return v;
  }
  template <typename T>
  bool write_obj(GuestAddress addr, const T& v) const {
    static_assert(std::is_trivially_copyable_v<T>);
    auto s = slice(addr, sizeof(T));
    if (!s) return false;
    std::memcpy(s->data(), &v, sizeof(T));
    return true;
  }
  bool write_bytes(GuestAddress addr, std::span<const uint8_t> bytes) const;

  static constexpr uint64_t kPageSize = 4096;
  enum class DiscardResult : uint8_t { kOk, kOutOfRange, kMisaligned, kHostError };
  // Gives the host memory behind [addr, addr+len) back to the host: the
  // guest reads zeros there afterwards and the pages are allocated again on
  // its next touch. The range must be page aligned, non-empty and wholly
  // inside one region (guest values: checked, never trusted).
  DiscardResult discard(GuestAddress addr, uint64_t len) const;

  const std::vector<GuestRegion>& regions() const { return regions_; }
  uint64_t total_size() const { return total_; }

 private:
  MmapRegion mapping_;
  uint64_t total_ = 0;
  std::vector<GuestRegion> regions_;
};

}  // namespace ksbox
