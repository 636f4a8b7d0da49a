#include "vmm/x86/loader.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <asm/bootparam.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "test_helpers.h"
#include "tests/support/elf_header.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t kRam = 32 * MiB;

GuestMemory make_ram(uint64_t size = kRam) { return GuestMemory({{GuestAddress(0), size}}); }

std::vector<uint8_t> guest_bytes(const GuestMemory& mem, uint64_t addr, uint64_t len) {
  auto s = mem.slice(GuestAddress(addr), len);
  if (!s) {
    ADD_FAILURE() << "no guest RAM at " << addr;
    return {};
  }
  return {s->begin(), s->end()};
}

// ---------------------------------------------------------------------------
// A synthetic vmlinux: 64-bit header, two PT_LOAD program headers at offset
// 64, segment 0's bytes at file offset 0x200, segment 1's at 0x400, in a
// 0x1000-byte file. Tests tweak the public fields and call bytes().

constexpr uint64_t kSeg0Paddr = 0x1000000, kSeg1Paddr = 0x1200000;
constexpr uint64_t kVirtBase = 0xffffffff80000000ull;
constexpr uint64_t kSeg0File = 0x200, kSeg0Size = 0x100;
constexpr uint64_t kSeg1File = 0x400, kSeg1FileSize = 0x80, kSeg1MemSize = 0x1000;
constexpr size_t kElfFileSize = 0x1000;

struct TestElf {
  Elf64_Ehdr eh{};
  std::vector<Elf64_Phdr> ph;
  std::vector<uint8_t> file = std::vector<uint8_t>(kElfFileSize, 0);

  TestElf() {
    eh = test::x86_64_exec_header(kSeg0Paddr + 0x10, 2);

    Elf64_Phdr p0{};
    p0.p_type = PT_LOAD;
    p0.p_flags = PF_R | PF_X;
    p0.p_offset = kSeg0File;
    p0.p_vaddr = kVirtBase + kSeg0Paddr;
    p0.p_paddr = kSeg0Paddr;
    p0.p_filesz = kSeg0Size;
    p0.p_memsz = kSeg0Size;
    Elf64_Phdr p1 = p0;
    p1.p_flags = PF_R | PF_W;
    p1.p_offset = kSeg1File;
    p1.p_vaddr = kVirtBase + kSeg1Paddr;
    p1.p_paddr = kSeg1Paddr;
    p1.p_filesz = kSeg1FileSize;
    p1.p_memsz = kSeg1MemSize;  // the rest is .bss
    ph = {p0, p1};

    for (uint64_t i = 0; i < kSeg0Size; ++i) file[kSeg0File + i] = static_cast<uint8_t>(i * 7 + 1);
    for (uint64_t i = 0; i < kSeg1FileSize; ++i) file[kSeg1File + i] = static_cast<uint8_t>(i * 13 + 5);
  }

  std::vector<uint8_t> bytes() const {
    auto out = file;
    std::memcpy(out.data(), &eh, sizeof eh);
    // Program headers always live at offset 64, whatever e_phoff claims.
    const size_t n = std::min<size_t>(ph.size(), (out.size() - sizeof eh) / sizeof(Elf64_Phdr));
    std::memcpy(out.data() + sizeof eh, ph.data(), n * sizeof(Elf64_Phdr));
    return out;
  }
};

TEST(LoadElfTest, LoadsSegmentsAtPaddrAndZeroesBss) {
  auto mem = make_ram();
  // Pre-fill the .bss area with junk: the loader must clear it.
  auto bss = mem.slice(GuestAddress(kSeg1Paddr), kSeg1MemSize);
  ASSERT_TRUE(bss);
  std::fill(bss->begin(), bss->end(), 0xcc);

  TestElf elf;
  const auto image = elf.bytes();
  const auto k = load_elf(image, mem);
  EXPECT_EQ(k.format, KernelFormat::Elf);
  EXPECT_EQ(k.entry.value(), kSeg0Paddr + 0x10);
  EXPECT_EQ(k.end, kSeg1Paddr + kSeg1MemSize);
  EXPECT_FALSE(k.setup.has_value());
  EXPECT_EQ(k.cmdline_max, kCmdlineMax);

  EXPECT_EQ(guest_bytes(mem, kSeg0Paddr, kSeg0Size),
            std::vector<uint8_t>(image.begin() + kSeg0File, image.begin() + kSeg0File + kSeg0Size));
  EXPECT_EQ(guest_bytes(mem, kSeg1Paddr, kSeg1FileSize),
            std::vector<uint8_t>(image.begin() + kSeg1File, image.begin() + kSeg1File + kSeg1FileSize));
  const auto tail = guest_bytes(mem, kSeg1Paddr + kSeg1FileSize, kSeg1MemSize - kSeg1FileSize);
  EXPECT_TRUE(std::all_of(tail.begin(), tail.end(), [](uint8_t b) { return b == 0; })) << ".bss not zeroed";
  // Nothing written right after the segment.
  EXPECT_EQ(guest_bytes(mem, kSeg1Paddr + kSeg1MemSize, 1), std::vector<uint8_t>{0});
}

TEST(LoadElfTest, VirtualEntryIsTranslatedToPhysical) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_entry = kVirtBase + kSeg1Paddr + 0x40;
  EXPECT_EQ(load_elf(elf.bytes(), mem).entry.value(), kSeg1Paddr + 0x40);
  elf.eh.e_entry = kVirtBase + kSeg0Paddr;
  EXPECT_EQ(load_elf(elf.bytes(), mem).entry.value(), kSeg0Paddr);
}

TEST(LoadElfTest, EndIsTheHighestSegmentEndWhateverTheOrder) {
  auto mem = make_ram();
  TestElf elf;
  std::swap(elf.ph[0], elf.ph[1]);
  EXPECT_EQ(load_elf(elf.bytes(), mem).end, kSeg1Paddr + kSeg1MemSize);
}

TEST(LoadElfTest, NonLoadSegmentsAreSkipped) {
  auto mem = make_ram();
  TestElf elf;
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = 0xf00;
  note.p_filesz = 0x10;
  note.p_memsz = 0x10;
  note.p_paddr = 0x10;  // would be refused if it were loaded (below 1 MiB)
  elf.ph.push_back(note);
  elf.eh.e_phnum = 3;
  const auto k = load_elf(elf.bytes(), mem);
  EXPECT_EQ(k.end, kSeg1Paddr + kSeg1MemSize);
}

TEST(LoadElfTest, TruncatedHeader) {
  auto mem = make_ram();
  const auto image = TestElf().bytes();
  EXPECT_KSBOX_ERROR(load_elf(std::span(image).first(32), mem), "truncated");
  EXPECT_KSBOX_ERROR(load_elf(std::span(image).first(0), mem), "truncated");
}

TEST(LoadElfTest, BadMagic) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_ident[EI_MAG1] = 'X';
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "magic");
}

TEST(LoadElfTest, ThirtyTwoBitClass) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_ident[EI_CLASS] = ELFCLASS32;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "64-bit");
}

TEST(LoadElfTest, BigEndian) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_ident[EI_DATA] = ELFDATA2MSB;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "little-endian");
}

TEST(LoadElfTest, WrongMachine) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_machine = EM_AARCH64;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "x86_64");
}

TEST(LoadElfTest, NotExecutable) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_type = ET_DYN;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "executable");
  elf.eh.e_type = ET_REL;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "executable");
}

TEST(LoadElfTest, WrongProgramHeaderSize) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_phentsize = sizeof(Elf32_Phdr);
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "program header size");
}

TEST(LoadElfTest, ZeroOrHugeProgramHeaderCount) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_phnum = 0;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "program headers");
  elf.eh.e_phnum = 0xffff;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "program headers");
  elf.eh.e_phnum = 65;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "program headers");
}

TEST(LoadElfTest, ProgramHeadersPastEndOfFile) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_phoff = kElfFileSize - sizeof(Elf64_Phdr);  // the second one falls off
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "truncated");
  elf.eh.e_phoff = kElfFileSize + 8;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "truncated");
  elf.eh.e_phoff = UINT64_MAX - 8;  // phoff + phnum * 56 overflows
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "truncated");
}

TEST(LoadElfTest, SegmentFileRangePastEndOfFile) {
  auto mem = make_ram();
  TestElf elf;
  elf.ph[1].p_offset = kElfFileSize - 0x10;  // 0x80 bytes wanted, 0x10 there
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "truncated");
  elf.ph[1].p_offset = kElfFileSize + 1;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "truncated");
}

TEST(LoadElfTest, SegmentFileRangeThatOverflowsWhenAdded) {
  auto mem = make_ram();
  TestElf elf;
  elf.ph[1].p_offset = UINT64_MAX - 0x10;  // offset + filesz wraps to a small value
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "truncated");
  TestElf elf2;
  elf2.ph[1].p_offset = 0x400;
  elf2.ph[1].p_filesz = UINT64_MAX - 0x3ff;  // 0x400 + filesz == 2^64
  elf2.ph[1].p_memsz = UINT64_MAX;
  EXPECT_KSBOX_ERROR(load_elf(elf2.bytes(), mem), "truncated");
}

TEST(LoadElfTest, FileSizeAboveMemorySize) {
  auto mem = make_ram();
  TestElf elf;
  elf.ph[0].p_memsz = elf.ph[0].p_filesz - 1;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "memory size");
}

TEST(LoadElfTest, SegmentOutsideGuestRam) {
  auto mem = make_ram();
  TestElf elf;
  elf.ph[1].p_paddr = kRam - 0x100;  // 0x1000 bytes from here cross the end of RAM
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "outside guest RAM");
  elf.ph[1].p_paddr = 1ull << 32;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "outside guest RAM");
  elf.ph[1].p_paddr = UINT64_MAX - 0x7ff;  // paddr + memsz wraps
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "outside guest RAM");
  TestElf huge;
  huge.ph[1].p_memsz = UINT64_MAX;
  EXPECT_KSBOX_ERROR(load_elf(huge.bytes(), mem), "outside guest RAM");
}

TEST(LoadElfTest, SegmentBelowOneMiB) {
  auto mem = make_ram();
  TestElf elf;
  elf.ph[0].p_paddr = 0x80000;
  elf.eh.e_entry = kSeg1Paddr;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "1 MiB");
  elf.ph[0].p_paddr = 0;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "1 MiB");
}

TEST(LoadElfTest, EntryNotInAnySegment) {
  auto mem = make_ram();
  TestElf elf;
  elf.eh.e_entry = 0x5000000;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "entry point");
  elf.eh.e_entry = kSeg0Paddr + kSeg0Size;  // one past segment 0's end (and not in 1)
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "entry point");
}

TEST(LoadElfTest, NoLoadableSegment) {
  auto mem = make_ram();
  TestElf elf;
  elf.ph[0].p_type = PT_NOTE;
  elf.ph[1].p_type = PT_NOTE;
  EXPECT_KSBOX_ERROR(load_elf(elf.bytes(), mem), "no loadable segment");
}

// ---------------------------------------------------------------------------
// load_kernel: format detection.

TEST(LoadKernelTest, TenByteFileIsRefused) {
  auto mem = make_ram();
  const std::vector<uint8_t> tiny{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0};
  EXPECT_KSBOX_ERROR(load_kernel(tiny, mem), "truncated");
}

TEST(LoadKernelTest, RandomBytesAreRefused) {
  auto mem = make_ram();
  std::mt19937 rng(12345);
  for (size_t size : {size_t{700}, size_t{4096}, size_t{1} << 20}) {
    std::vector<uint8_t> junk(size);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    junk[0] = 0;  // never the ELF magic
    junk[0x202] = 0;  // never "HdrS"
    EXPECT_KSBOX_ERROR(load_kernel(junk, mem), "bad magic");
  }
}

TEST(LoadKernelTest, DetectsAnElf) {
  auto mem = make_ram();
  TestElf elf;
  const auto k = load_kernel(elf.bytes(), mem);
  EXPECT_EQ(k.format, KernelFormat::Elf);
  EXPECT_EQ(k.entry.value(), kSeg0Paddr + 0x10);
}

// ---------------------------------------------------------------------------
// A synthetic bzImage: one setup sector after the boot sector, the setup
// header at 0x1f1, a jump at 0x200 whose displacement covers the whole
// header, then a 0x3000-byte payload at file offset 0x400.

constexpr size_t kHdrOffset = 0x1f1;
constexpr size_t kPayloadOffset = 0x400;  // (setup_sects + 1) * 512
constexpr size_t kPayloadSize = 0x3000;
constexpr uint32_t kInitSize = 0x20000;
constexpr uint64_t kPrefAddress = 0x1000000;

struct TestBzImage {
  setup_header hdr{};
  std::vector<uint8_t> payload = std::vector<uint8_t>(kPayloadSize);

  TestBzImage() {
    hdr.setup_sects = 1;
    hdr.boot_flag = 0xaa55;
    // "jmp short" to just past the header: byte 0x201 is the displacement from 0x202.
    const auto disp = static_cast<uint8_t>(kHdrOffset + sizeof(setup_header) - 0x202);
    hdr.jump = static_cast<uint16_t>(0xeb | (disp << 8));
    hdr.header = 0x53726448;  // "HdrS"
    hdr.version = 0x020f;
    hdr.loadflags = 1;  // LOADED_HIGH
    hdr.kernel_alignment = 0x200000;
    hdr.relocatable_kernel = 1;
    hdr.xloadflags = 1;  // XLF_KERNEL_64
    hdr.cmdline_size = 2047;
    hdr.initrd_addr_max = 0x7fffffff;
    hdr.init_size = kInitSize;
    hdr.pref_address = kPrefAddress;  // LOAD_PHYSICAL_ADDR of a default x86_64 build
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 31 + 3);
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out(kPayloadOffset, 0);
    std::memcpy(out.data() + kHdrOffset, &hdr, sizeof hdr);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
  }
};

TEST(LoadBzImageTest, HeaderLayoutIsWhatTheTestAssumes) {
  EXPECT_EQ(offsetof(setup_header, jump) + kHdrOffset, 0x200u);
  EXPECT_EQ(offsetof(setup_header, header) + kHdrOffset, 0x202u);
  EXPECT_EQ(offsetof(setup_header, version) + kHdrOffset, 0x206u);
  EXPECT_EQ(offsetof(setup_header, init_size) + kHdrOffset, 0x260u);
  const auto image = TestBzImage().bytes();
  EXPECT_EQ(image[0x200], 0xeb);
  EXPECT_EQ(0x202u + image[0x201], kHdrOffset + sizeof(setup_header));
}

TEST(LoadBzImageTest, LoadsThePayloadAtOneMiB) {
  auto mem = make_ram();
  TestBzImage bz;
  const auto image = bz.bytes();
  const auto k = load_bzimage(image, mem);
  EXPECT_EQ(k.format, KernelFormat::BzImage);
  EXPECT_EQ(k.entry.value(), 0x100200u);
  EXPECT_GE(k.end, 0x100000u + kPayloadSize) << "end must cover the loaded payload";
  ASSERT_TRUE(k.setup.has_value());
  EXPECT_EQ(k.setup->version, 0x020f);
  EXPECT_EQ(k.setup->setup_sects, 1);
  EXPECT_EQ(k.setup->init_size, kInitSize);
  EXPECT_EQ(k.initrd_addr_max, 0x7fffffffu);
  EXPECT_EQ(guest_bytes(mem, 0x100000, kPayloadSize), bz.payload);
  // The setup code is not loaded.
  EXPECT_EQ(guest_bytes(mem, 0x100000 + kPayloadSize, 4), std::vector<uint8_t>(4, 0));
}

TEST(LoadBzImageTest, CmdlineMaxComesFromTheHeader) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.cmdline_size = 255;
  const auto k = load_bzimage(bz.bytes(), mem);
  // cmdline_size excludes the NUL; cmdline_max includes it.
  EXPECT_GE(k.cmdline_max, 255u);
  EXPECT_LE(k.cmdline_max, 256u);
  bz.hdr.cmdline_size = 0;  // not given: the x86 default
  EXPECT_EQ(load_bzimage(bz.bytes(), mem).cmdline_max, kCmdlineMax);
}

// Boot protocol: "cmdline_size: the maximum size of the command line without
// the terminating zero"; LoadedKernel::cmdline_max counts the NUL.
TEST(LoadBzImageTest, CmdlineMaxCountsTheTerminatingNul) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.cmdline_size = 2047;  // COMMAND_LINE_SIZE - 1, as every x86 kernel says
  EXPECT_EQ(load_bzimage(bz.bytes(), mem).cmdline_max, 2048u);
}

TEST(LoadBzImageTest, PayloadLargerThanInitSizeIsCovered) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.init_size = 0x1000;
  bz.hdr.pref_address = 0;
  bz.hdr.relocatable_kernel = 0;
  EXPECT_GE(load_bzimage(bz.bytes(), mem).end, 0x100000u + kPayloadSize);
}

// Boot protocol, init_size: the kernel needs init_size bytes from its runtime
// start, which for a relocatable kernel is
// align_up(max(load_address, pref_address), kernel_alignment), and
// pref_address otherwise: head_64.S moves itself there before decompressing.
// `end` must cover that, or the initrd may be placed where the kernel
// decompresses itself.
TEST(LoadBzImageTest, EndCoversTheDecompressionAreaAtPrefAddress) {
  auto mem = make_ram();
  TestBzImage bz;  // relocatable, pref_address 16 MiB, 2 MiB alignment
  EXPECT_GE(load_bzimage(bz.bytes(), mem).end, kPrefAddress + kInitSize);
  bz.hdr.relocatable_kernel = 0;
  EXPECT_GE(load_bzimage(bz.bytes(), mem).end, kPrefAddress + kInitSize);
}

TEST(LoadBzImageTest, EndCoversTheAlignedRuntimeStartWithoutPrefAddress) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.pref_address = 0;
  bz.hdr.kernel_alignment = 0x200000;  // 1 MiB load address rounds up to 2 MiB
  EXPECT_GE(load_bzimage(bz.bytes(), mem).end, 0x200000u + kInitSize);
}

TEST(LoadBzImageTest, DecompressionAreaMustFitInGuestRam) {
  auto mem = make_ram();  // 32 MiB
  TestBzImage bz;
  bz.hdr.init_size = 20 * MiB;  // fits from 1 MiB, not from the 16 MiB runtime start
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "--memory");
}

TEST(LoadBzImageTest, DetectedByLoadKernel) {
  auto mem = make_ram();
  const auto k = load_kernel(TestBzImage().bytes(), mem);
  EXPECT_EQ(k.format, KernelFormat::BzImage);
  EXPECT_EQ(k.entry.value(), 0x100200u);
}

TEST(LoadBzImageTest, ZeroSetupSectsMeansFour) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.setup_sects = 0;
  const auto image = bz.bytes();  // 0x400 bytes of "setup", then the payload
  const auto k = load_bzimage(image, mem);
  // The payload is taken from (4 + 1) * 512 = 0xa00.
  EXPECT_EQ(guest_bytes(mem, 0x100000, 16),
            std::vector<uint8_t>(image.begin() + 0xa00, image.begin() + 0xa00 + 16));
  EXPECT_EQ(k.entry.value(), 0x100200u);
}

TEST(LoadBzImageTest, MissingHdrS) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.header = 0x12345678;
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "HdrS");
}

TEST(LoadBzImageTest, WrongBootFlag) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.boot_flag = 0x55aa;
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "boot flag");
}

TEST(LoadBzImageTest, OldBootProtocol) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.version = 0x0209;
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "boot protocol");
  bz.hdr.version = 0x020b;
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "2.12");
  bz.hdr.version = 0x020c;
  EXPECT_NO_THROW(load_bzimage(bz.bytes(), mem));
}

TEST(LoadBzImageTest, NoSixtyFourBitEntry) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.xloadflags = 0x2;  // XLF_CAN_BE_LOADED_ABOVE_4G only
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "64-bit entry");
}

TEST(LoadBzImageTest, NotLoadedHigh) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.loadflags = 0x80;  // CAN_USE_HEAP without LOADED_HIGH
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "high");
}

TEST(LoadBzImageTest, SetupSectsPastEndOfFile) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.setup_sects = 200;  // 100 KiB of setup code in a 13 KiB file
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "truncated");
  bz.hdr.setup_sects = 255;
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "truncated");
  // Setup code exactly filling the file leaves no payload.
  TestBzImage empty;
  empty.payload.clear();
  EXPECT_KSBOX_ERROR(load_bzimage(empty.bytes(), mem), "truncated");
}

TEST(LoadBzImageTest, InitSizeLargerThanGuestRam) {
  auto mem = make_ram();
  TestBzImage bz;
  bz.hdr.init_size = 64 * MiB;
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "--memory");
  bz.hdr.init_size = 0xffffffff;
  EXPECT_KSBOX_ERROR(load_bzimage(bz.bytes(), mem), "--memory");
}

TEST(LoadBzImageTest, HeaderShorterThanTheFile) {
  auto mem = make_ram();
  const auto image = TestBzImage().bytes();
  EXPECT_KSBOX_ERROR(load_bzimage(std::span(image).first(0x210), mem), "truncated");
}

// ---------------------------------------------------------------------------
// load_initrd

LoadedKernel elf_kernel() {
  return LoadedKernel{KernelFormat::Elf, GuestAddress(kSeg0Paddr), kSeg1Paddr + kSeg1MemSize, std::nullopt,
                      kCmdlineMax, kMmioGapStart - 1};
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 17 + 11);
  return v;
}

TEST(LoadInitrdTest, LandsPageAlignedAtTheTopBelowTheLimit) {
  auto mem = make_ram();
  const auto initrd = pattern(5000);
  const uint64_t addr = load_initrd(initrd, mem, elf_kernel(), kRam).value();
  EXPECT_EQ(addr % 4096, 0u);
  EXPECT_LE(addr + initrd.size(), kRam);
  EXPECT_LT(kRam - (addr + initrd.size()), 4096u) << "not at the top";
  EXPECT_GE(addr, elf_kernel().end);
  EXPECT_EQ(guest_bytes(mem, addr, initrd.size()), initrd);
}

TEST(LoadInitrdTest, ExactPageMultipleEndsAtTheLimit) {
  auto mem = make_ram();
  const auto initrd = pattern(8192);
  EXPECT_EQ(load_initrd(initrd, mem, elf_kernel(), 24 * MiB).value(), 24 * MiB - 8192);
}

TEST(LoadInitrdTest, KernelInitrdAddrMaxLowersTheLimit) {
  auto mem = make_ram();
  auto k = elf_kernel();
  k.initrd_addr_max = 24 * MiB - 1;  // highest byte
  const auto initrd = pattern(100);
  const uint64_t addr = load_initrd(initrd, mem, k, kRam).value();
  EXPECT_LE(addr + initrd.size(), 24 * MiB);
  EXPECT_EQ(addr, 24 * MiB - 4096);
}

TEST(LoadInitrdTest, TooBigThrows) {
  auto mem = make_ram();
  const std::vector<uint8_t> initrd(kRam + 1, 1);
  EXPECT_KSBOX_ERROR(load_initrd(initrd, mem, elf_kernel(), kRam), "initrd");
}

TEST(LoadInitrdTest, OverlappingTheKernelThrows) {
  auto mem = make_ram();
  // Fits below the limit, but only by reaching down into the kernel.
  const std::vector<uint8_t> initrd(kRam - elf_kernel().end + 4096, 1);
  EXPECT_KSBOX_ERROR(load_initrd(initrd, mem, elf_kernel(), kRam), "kernel");
  // A limit below the kernel's end.
  EXPECT_KSBOX_ERROR(load_initrd(pattern(10), mem, elf_kernel(), kSeg0Paddr), "kernel");
}

TEST(LoadInitrdTest, EmptyThrows) {
  auto mem = make_ram();
  EXPECT_KSBOX_ERROR(load_initrd(std::span<const uint8_t>(), mem, elf_kernel(), kRam), "empty");
}

TEST(LoadInitrdTest, LimitAboveRamThrows) {
  auto mem = make_ram();
  EXPECT_KSBOX_ERROR(load_initrd(pattern(10), mem, elf_kernel(), 2 * kRam), "outside guest RAM");
}

}  // namespace
}  // namespace ksbox::x86
