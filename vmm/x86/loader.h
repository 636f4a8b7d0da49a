// Kernel and initrd loaders. Images are untrusted input: every offset and size
// is checked, and a bad image is refused with a message naming the problem.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <span>

#include "vmm/guest_memory.h"

namespace ksbox::x86 {

enum class KernelFormat { Elf, BzImage };

struct LoadedKernel {
  KernelFormat format;
  GuestAddress entry;                 // 64-bit entry point
  uint64_t end;                       // first byte above everything loaded
  std::optional<setup_header> setup;  // bzImage only
  uint64_t cmdline_max;               // bytes the kernel accepts, NUL included
  uint64_t initrd_addr_max;           // highest byte an initrd may occupy
};

// Tells an ELF vmlinux from a bzImage by magic; throws Error for anything else.
KernelFormat detect_kernel_format(std::span<const uint8_t> image);
// Detects the format and loads it.
LoadedKernel load_kernel(std::span<const uint8_t> image, const GuestMemory& mem);
LoadedKernel load_elf(std::span<const uint8_t> image, const GuestMemory& mem);
LoadedKernel load_bzimage(std::span<const uint8_t> image, const GuestMemory& mem);

// Places the initrd page-aligned at the top of RAM below `limit` (exclusive)
// and above the kernel; returns its address.
GuestAddress load_initrd(std::span<const uint8_t> initrd, const GuestMemory& mem,
                         const LoadedKernel& kernel, uint64_t limit);

}  // namespace ksbox::x86
