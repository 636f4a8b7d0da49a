// A regular file mapped read-only, for loading kernels and initrds.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "vmm/mmap_region.h"

namespace ksbox {

class MappedFile {
 public:
  // `what` names the file in errors ("kernel", "initrd"). Refuses missing,
  // non-regular, empty and larger-than-`max_size` files.
  MappedFile(const std::string& path, const char* what, uint64_t max_size);
  std::span<const uint8_t> bytes() const { return {map_.data(), map_.size()}; }

 private:
  MmapRegion map_;
};

}  // namespace ksbox
