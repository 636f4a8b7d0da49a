#include "vmm/guest_memory.h"

#include <sys/mman.h>

#include <algorithm>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox {

GuestMemory::GuestMemory(const std::vector<Layout>& layout) {
  uint64_t total = 0;
  for (const auto& l : layout) {
    if (l.size == 0 || l.size % 4096 != 0 || l.start.value() % 4096 != 0)
      throw Error("guest memory regions must be non-empty and page aligned");
    if (!l.start.checked_add(l.size)) throw Error("guest memory region wraps the address space");
    total += l.size;
  }
  auto sorted = layout;
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.start < b.start; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i - 1].start.value() + sorted[i - 1].size > sorted[i].start.value())
      throw Error("guest memory regions overlap");

  // Each region where its host address agrees with its guest address in
  // the low 21 bits: only there can KVM map a 2 MiB guest page with one
  // huge page (else every 4 KiB page of the guest is a nested page fault
  // of its own). The gaps between regions are never touched.
  constexpr uint64_t kHuge = MmapRegion::kHugePage;
  std::vector<uint64_t> offsets;
  uint64_t off = 0;
  for (const auto& l : sorted) {
    off += (l.start.value() - off) & (kHuge - 1);
    offsets.push_back(off);
    off += l.size;
  }
  mapping_ = MmapRegion::anonymous(off);
  total_ = total;
  for (size_t i = 0; i < sorted.size(); ++i)
    regions_.push_back({sorted[i].start, sorted[i].size, mapping_.data() + offsets[i]});
}

std::optional<std::span<uint8_t>> GuestMemory::slice(GuestAddress addr, uint64_t len) const {
  auto end = addr.checked_add(len);
  if (!end) return std::nullopt;
  for (const auto& r : regions_) {
    const uint64_t rs = r.start.value();
    if (addr.value() >= rs && addr.value() - rs < r.size) {
      const uint64_t off = addr.value() - rs;
      if (len > r.size - off) return std::nullopt;  // crosses the region's end
      return std::span<uint8_t>(r.host + off, len);
    }
  }
  // A zero-length slice just past a region's end is still "inside" nothing.
  return std::nullopt;
}

std::span<uint8_t> GuestMemory::slice_or_throw(GuestAddress addr, uint64_t len,
                                               const char* what) const {
  auto s = slice(addr, len);
  if (!s)
    throw Error(fmt::format("{} [{:#x}, +{:#x}) does not fit in guest RAM", what, addr.value(), len));
  return *s;
}

GuestMemory::DiscardResult GuestMemory::discard(GuestAddress addr, uint64_t len) const {
  if (len == 0 || addr.value() % kPageSize != 0 || len % kPageSize != 0) return DiscardResult::kMisaligned;
  auto s = slice(addr, len);
  if (!s) return DiscardResult::kOutOfRange;
  // Guest RAM is one private anonymous mapping (MmapRegion::anonymous):
  // MADV_DONTNEED frees the pages and leaves zero-fill-on-demand behind.
  // KVM's MMU notifier drops the guest's mappings of them too.
  if (::madvise(s->data(), s->size(), MADV_DONTNEED) != 0) return DiscardResult::kHostError;
  return DiscardResult::kOk;
}

bool GuestMemory::write_bytes(GuestAddress addr, std::span<const uint8_t> bytes) const {
  auto s = slice(addr, bytes.size());
  if (!s) return false;
  std::memcpy(s->data(), bytes.data(), bytes.size());
  return true;
}

}  // namespace ksbox
