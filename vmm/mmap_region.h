// Move-only owner of an mmap()ed range.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace ksbox {

class MmapRegion {
 public:
  MmapRegion() = default;
  static constexpr size_t kHugePage = size_t{2} << 20;
  // Anonymous private memory, reserved lazily (the guest's size is a limit);
  // aligned to kHugePage when at least that large.
  static MmapRegion anonymous(size_t size);
  // Maps `size` bytes of `fd` at `offset` (shared, read-write).
  static MmapRegion shared_fd(int fd, size_t size, off_t offset = 0);
  // Maps a whole file read-only (private).
  static MmapRegion readonly_file(int fd, size_t size);

  MmapRegion(MmapRegion&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MmapRegion& operator=(MmapRegion&& o) noexcept {
    if (this != &o) {
      unmap();
      addr_ = std::exchange(o.addr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  MmapRegion(const MmapRegion&) = delete;
  MmapRegion& operator=(const MmapRegion&) = delete;
  ~MmapRegion() { unmap(); }

  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  MmapRegion(void* addr, size_t size) : addr_(addr), size_(size) {}
  void unmap() {
    if (addr_) ::munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
  }
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ksbox
