#include "vmm/x86/e820.h"

#include <algorithm>

#include "vmm/error.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {

uint64_t low_ram_end(uint64_t mem_bytes) { return std::min(mem_bytes, kMmioGapStart); }

std::vector<GuestMemory::Layout> ram_layout(uint64_t mem_bytes) {
  if (mem_bytes < kMinMemoryMiB << 20) throw Error("guest memory below the minimum");
  std::vector<GuestMemory::Layout> out{{GuestAddress(0), low_ram_end(mem_bytes)}};
  if (mem_bytes > kMmioGapStart)
    out.push_back({GuestAddress(kMmioGapEnd), mem_bytes - kMmioGapStart});
  return out;
}

std::vector<E820Entry> build_e820(uint64_t mem_bytes) {
  if (mem_bytes < kMinMemoryMiB << 20) throw Error("guest memory below the minimum");
  std::vector<E820Entry> map{
      {0, kEbdaStart, kE820Ram},
      {kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved},
      {kHighMemStart, low_ram_end(mem_bytes) - kHighMemStart, kE820Ram},
  };
  if (mem_bytes > kMmioGapStart) map.push_back({kMmioGapEnd, mem_bytes - kMmioGapStart, kE820Ram});
  return map;
}

}  // namespace ksbox::x86
