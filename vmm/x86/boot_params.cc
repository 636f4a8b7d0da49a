#include "vmm/x86/boot_params.h"

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::x86 {
namespace {
constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
constexpr uint8_t kUndefinedLoader = 0xff;
constexpr uint32_t kKernelAlignment = 0x1000000;
}  // namespace

boot_params build_boot_params(const BootParamsInput& in) {
  boot_params bp{};
  if (in.setup) {
    bp.hdr = *in.setup;
  } else {
    bp.hdr.boot_flag = kBootFlag;
    bp.hdr.header = kHdrSMagic;
    bp.hdr.kernel_alignment = kKernelAlignment;
  }
  bp.hdr.type_of_loader = kUndefinedLoader;

  constexpr uint64_t k4G = 1ull << 32;
  if (in.cmdline_addr > k4G || in.cmdline_size > k4G - in.cmdline_addr)
    throw Error("kernel command line must live below 4 GiB");
  bp.hdr.cmd_line_ptr = static_cast<uint32_t>(in.cmdline_addr);
  bp.hdr.cmdline_size = in.cmdline_size;

  if (in.initrd_size) {
    if (in.initrd_addr > k4G || in.initrd_size > k4G - in.initrd_addr) throw Error("initrd must live below 4 GiB");
    bp.hdr.ramdisk_image = static_cast<uint32_t>(in.initrd_addr);
    bp.hdr.ramdisk_size = static_cast<uint32_t>(in.initrd_size);
  }

  if (in.e820.size() > E820_MAX_ENTRIES_ZEROPAGE)
    throw Error(fmt::format("{} e820 entries do not fit the zero page", in.e820.size()));
  for (size_t i = 0; i < in.e820.size(); ++i) {
    bp.e820_table[i].addr = in.e820[i].addr;
    bp.e820_table[i].size = in.e820[i].size;
    bp.e820_table[i].type = in.e820[i].type;
  }
  bp.e820_entries = static_cast<uint8_t>(in.e820.size());
  return bp;
}

}  // namespace ksbox::x86
