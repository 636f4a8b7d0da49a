// The Linux "zero page" (struct boot_params) handed to the kernel in %rsi.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "vmm/x86/e820.h"

namespace ksbox::x86 {

struct BootParamsInput {
  std::optional<setup_header> setup;  // from a bzImage; none for an ELF vmlinux
  uint64_t cmdline_addr = 0;
  uint32_t cmdline_size = 0;  // bytes, including the terminating NUL
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;
  std::vector<E820Entry> e820;
};

// Throws Error when the input cannot be described (too many e820 entries,
// initrd or command line above 4 GiB).
boot_params build_boot_params(const BootParamsInput& in);

}  // namespace ksbox::x86
