#include "vmm/x86/boot_params.h"

#include <gtest/gtest.h>

#include "test_helpers.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

constexpr uint32_t kHdrS = 0x53726448;

BootParamsInput elf_input() {
  BootParamsInput in;
  in.cmdline_addr = kCmdlineAddr;
  in.cmdline_size = 42;
  in.initrd_addr = 0x7000000;
  in.initrd_size = 0x123456;
  in.e820 = build_e820(256ull << 20);
  return in;
}

TEST(BuildBootParamsTest, ElfKernelGetsAMinimalHeader) {
  const auto in = elf_input();
  const boot_params bp = build_boot_params(in);
  EXPECT_EQ(bp.hdr.header, kHdrS);
  EXPECT_EQ(bp.hdr.boot_flag, 0xaa55);
  EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp.hdr.cmd_line_ptr, kCmdlineAddr);
  EXPECT_EQ(bp.hdr.cmdline_size, 42u);
  EXPECT_EQ(bp.hdr.ramdisk_image, 0x7000000u);
  EXPECT_EQ(bp.hdr.ramdisk_size, 0x123456u);
  EXPECT_EQ(bp.ext_cmd_line_ptr, 0u);
  EXPECT_EQ(bp.ext_ramdisk_image, 0u);
}

TEST(BuildBootParamsTest, E820TableIsCopiedWithCount) {
  const auto in = elf_input();
  const boot_params bp = build_boot_params(in);
  ASSERT_EQ(bp.e820_entries, in.e820.size());
  for (size_t i = 0; i < in.e820.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(bp.e820_table[i].addr, in.e820[i].addr);
    EXPECT_EQ(bp.e820_table[i].size, in.e820[i].size);
    EXPECT_EQ(bp.e820_table[i].type, in.e820[i].type);
  }
  EXPECT_EQ(bp.e820_table[in.e820.size()].size, 0u);
}

TEST(BuildBootParamsTest, NoInitrdLeavesRamdiskFieldsZero) {
  auto in = elf_input();
  in.initrd_addr = 0x7000000;
  in.initrd_size = 0;
  const boot_params bp = build_boot_params(in);
  EXPECT_EQ(bp.hdr.ramdisk_image, 0u);
  EXPECT_EQ(bp.hdr.ramdisk_size, 0u);
}

TEST(BuildBootParamsTest, SetupHeaderFieldsAreKeptLoaderFieldsOverridden) {
  setup_header sh{};
  sh.setup_sects = 27;
  sh.boot_flag = 0xaa55;
  sh.header = kHdrS;
  sh.version = 0x020f;
  sh.loadflags = 0x81;
  sh.xloadflags = 0x7f;
  sh.kernel_alignment = 0x200000;
  sh.relocatable_kernel = 1;
  sh.init_size = 0x2000000;
  sh.type_of_loader = 0x21;   // must be replaced
  sh.cmd_line_ptr = 0xdead;   // must be replaced
  sh.ramdisk_image = 0xbeef;  // must be replaced
  auto in = elf_input();
  in.setup = sh;
  const boot_params bp = build_boot_params(in);
  EXPECT_EQ(bp.hdr.setup_sects, 27);
  EXPECT_EQ(bp.hdr.version, 0x020f);
  EXPECT_EQ(bp.hdr.loadflags, 0x81);
  EXPECT_EQ(bp.hdr.xloadflags, 0x7f);
  EXPECT_EQ(bp.hdr.kernel_alignment, 0x200000u);
  EXPECT_EQ(bp.hdr.relocatable_kernel, 1);
  EXPECT_EQ(bp.hdr.init_size, 0x2000000u);
  EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp.hdr.cmd_line_ptr, kCmdlineAddr);
  EXPECT_EQ(bp.hdr.ramdisk_image, 0x7000000u);
  EXPECT_EQ(bp.hdr.ramdisk_size, 0x123456u);
}

TEST(BuildBootParamsTest, ExactlyE820MaxEntriesFits) {
  auto in = elf_input();
  in.e820.assign(E820_MAX_ENTRIES_ZEROPAGE, E820Entry{0x100000, 0x1000, kE820Ram});
  in.e820.back().addr = 0x777000;
  const boot_params bp = build_boot_params(in);
  EXPECT_EQ(bp.e820_entries, E820_MAX_ENTRIES_ZEROPAGE);
  EXPECT_EQ(bp.e820_table[E820_MAX_ENTRIES_ZEROPAGE - 1].addr, 0x777000u);
}

TEST(BuildBootParamsTest, TooManyE820EntriesThrows) {
  auto in = elf_input();
  in.e820.assign(E820_MAX_ENTRIES_ZEROPAGE + 1, E820Entry{0x100000, 0x1000, kE820Ram});
  EXPECT_KSBOX_ERROR(build_boot_params(in), "e820");
}

TEST(BuildBootParamsTest, CmdlineAbove4GiBThrows) {
  auto in = elf_input();
  in.cmdline_addr = 1ull << 32;
  EXPECT_KSBOX_ERROR(build_boot_params(in), "command line");
  in.cmdline_addr = (1ull << 32) - 10;  // crosses 4 GiB
  in.cmdline_size = 11;
  EXPECT_KSBOX_ERROR(build_boot_params(in), "command line");
  in.cmdline_size = 10;  // ends exactly at 4 GiB: fine
  EXPECT_NO_THROW(build_boot_params(in));
}

TEST(BuildBootParamsTest, InitrdAbove4GiBThrows) {
  auto in = elf_input();
  in.initrd_addr = 5ull << 30;
  EXPECT_KSBOX_ERROR(build_boot_params(in), "initrd");
  in.initrd_addr = (1ull << 32) - 0x1000;
  in.initrd_size = 0x1001;
  EXPECT_KSBOX_ERROR(build_boot_params(in), "initrd");
  in.initrd_addr = 0x1000;
  in.initrd_size = 5ull << 30;  // a size that does not fit the 32-bit field
  EXPECT_KSBOX_ERROR(build_boot_params(in), "initrd");
}

// addr + size must not wrap around 2^64 and slip past the 4 GiB check.
TEST(BuildBootParamsTest, CmdlineAddressNearUint64MaxThrows) {
  auto in = elf_input();
  in.cmdline_addr = UINT64_MAX - 0xff;  // + 0x100 wraps to 0
  in.cmdline_size = 0x100;
  EXPECT_KSBOX_ERROR(build_boot_params(in), "command line");
}

TEST(BuildBootParamsTest, InitrdAddressNearUint64MaxThrows) {
  auto in = elf_input();
  in.initrd_addr = UINT64_MAX - 0xfff;  // + 0x1000 wraps to 0
  in.initrd_size = 0x1000;
  EXPECT_KSBOX_ERROR(build_boot_params(in), "initrd");
}

}  // namespace
}  // namespace ksbox::x86
