// The guest's RAM layout: where memory goes and what the e820 map says.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/guest_memory.h"

namespace ksbox::x86 {

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

// RAM regions for `mem_bytes` of guest memory, split around the MMIO gap.
std::vector<GuestMemory::Layout> ram_layout(uint64_t mem_bytes);
// The map the kernel sees: low RAM, the EBDA/BIOS hole, RAM below and above the gap.
std::vector<E820Entry> build_e820(uint64_t mem_bytes);
// Top of RAM below the MMIO gap (exclusive).
uint64_t low_ram_end(uint64_t mem_bytes);

}  // namespace ksbox::x86
