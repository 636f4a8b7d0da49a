#include "vmm/mmap_region.h"

#include <cstdint>
#include <string>

#include "vmm/error.h"

namespace ksbox {

MmapRegion MmapRegion::anonymous(size_t size) {
  // 2 MiB aligned when that large: a transparent huge page needs an aligned
  // range, and Linux before 6.7 does not align large mappings by itself.
  const size_t align = size >= kHugePage ? kHugePage : 0;
  void* p = ::mmap(nullptr, size + align, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw_errno("cannot map " + std::to_string(size >> 20) + " MiB of guest memory");
  if (align) {
    const auto raw = reinterpret_cast<uintptr_t>(p);
    const uintptr_t start = (raw + align - 1) & ~(uintptr_t{align} - 1);
    if (start > raw) ::munmap(p, start - raw);
    if (const size_t tail = raw + align - start) ::munmap(reinterpret_cast<void*>(start + size), tail);
    p = reinterpret_cast<void*>(start);
  }
  // Huge pages cut the guest's nested page faults 512-fold; best effort.
  ::madvise(p, size, MADV_HUGEPAGE);
  return MmapRegion(p, size);
}

MmapRegion MmapRegion::shared_fd(int fd, size_t size, off_t offset) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
  if (p == MAP_FAILED) throw_errno("mmap of fd " + std::to_string(fd));
  return MmapRegion(p, size);
}

MmapRegion MmapRegion::readonly_file(int fd, size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) throw_errno("mmap of a file");
  return MmapRegion(p, size);
}

}  // namespace ksbox
