#include "vmm/x86/loader.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "vmm/error.h"
#include "vmm/x86/layout.h"

namespace ksbox::x86 {
namespace {

constexpr size_t kMaxPhdrs = 64;
constexpr uint32_t kHdrSMagic = 0x53726448;
constexpr uint16_t kBootFlag = 0xaa55;
constexpr size_t kSetupHeaderOffset = 0x1f1;
constexpr uint16_t kMinBootProtocol = 0x020c;  // 2.12: xloadflags / 64-bit entry
constexpr uint16_t kXlfKernel64 = 1 << 0;
constexpr uint8_t kLoadedHigh = 1 << 0;
constexpr uint64_t kStartup64Offset = 0x200;

template <typename T>
T read_at(std::span<const uint8_t> image, uint64_t off, const char* what) {
  if (off > image.size() || sizeof(T) > image.size() - off)
    throw Error(fmt::format("kernel image truncated: {} at offset {:#x} lies past its end ({} bytes)",
                            what, off, image.size()));
  T v;
  std::memcpy(&v, image.data() + off, sizeof(T));
  return v;
}

}  // namespace

KernelFormat detect_kernel_format(std::span<const uint8_t> image) {
  if (image.size() < kSetupHeaderOffset + sizeof(setup_header))
    throw Error(fmt::format("kernel image is only {} bytes: truncated or not a kernel", image.size()));
  if (std::memcmp(image.data(), ELFMAG, SELFMAG) == 0) return KernelFormat::Elf;
  if (read_at<uint32_t>(image, offsetof(setup_header, header) + kSetupHeaderOffset, "header") == kHdrSMagic)
    return KernelFormat::BzImage;
  throw Error("kernel image is neither an ELF vmlinux nor a bzImage (bad magic)");
}

LoadedKernel load_kernel(std::span<const uint8_t> image, const GuestMemory& mem) {
  return detect_kernel_format(image) == KernelFormat::Elf ? load_elf(image, mem) : load_bzimage(image, mem);
}

LoadedKernel load_elf(std::span<const uint8_t> image, const GuestMemory& mem) {
  const auto eh = read_at<Elf64_Ehdr>(image, 0, "ELF header");
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) throw Error("vmlinux: bad ELF magic");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    throw Error("vmlinux: not a little-endian 64-bit ELF");
  if (eh.e_machine != EM_X86_64) throw Error("vmlinux: not an x86_64 kernel");
  if (eh.e_type != ET_EXEC) throw Error("vmlinux: not an executable ELF");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) throw Error("vmlinux: unexpected program header size");
  if (eh.e_phnum == 0 || eh.e_phnum > kMaxPhdrs)
    throw Error(fmt::format("vmlinux: {} program headers (expected 1..{})", eh.e_phnum, kMaxPhdrs));
  if (eh.e_phoff > image.size() || uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > image.size() - eh.e_phoff)
    throw Error("vmlinux truncated: program headers lie past the end of the file");

  LoadedKernel out{KernelFormat::Elf, GuestAddress(0), 0, std::nullopt, kCmdlineMax, kMmioGapStart - 1};
  std::optional<uint64_t> entry;
  bool loaded = false;
  for (uint16_t i = 0; i < eh.e_phnum; ++i) {
    const auto ph = read_at<Elf64_Phdr>(image, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr),
                                        "program header");
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_filesz > ph.p_memsz)
      throw Error(fmt::format("vmlinux: segment {} has file size above its memory size", i));
    if (ph.p_offset > image.size() || ph.p_filesz > image.size() - ph.p_offset)
      throw Error(fmt::format("vmlinux truncated: segment {} needs bytes [{:#x}, +{:#x}) of a {}-byte file",
                              i, ph.p_offset, ph.p_filesz, image.size()));
    if (ph.p_paddr < kHighMemStart)
      throw Error(fmt::format("vmlinux: segment {} at {:#x} would overwrite the boot area below 1 MiB",
                              i, ph.p_paddr));
    auto dst = mem.slice(GuestAddress(ph.p_paddr), ph.p_memsz);
    if (!dst)
      throw Error(fmt::format("vmlinux: segment {} [{:#x}, +{:#x}) lies outside guest RAM "
                              "(give the guest more --memory?)",
                              i, ph.p_paddr, ph.p_memsz));
    std::memcpy(dst->data(), image.data() + ph.p_offset, ph.p_filesz);
    std::memset(dst->data() + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    out.end = std::max(out.end, ph.p_paddr + ph.p_memsz);
    loaded = true;
    // e_entry is physical for Linux vmlinux; accept a virtual one inside a segment too.
    if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
      entry = eh.e_entry;
    else if (!entry && eh.e_entry >= ph.p_vaddr && eh.e_entry - ph.p_vaddr < ph.p_memsz)
      entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
  }
  if (!loaded) throw Error("vmlinux: no loadable segment");
  if (!entry) throw Error(fmt::format("vmlinux: entry point {:#x} is not inside a loaded segment", eh.e_entry));
  out.entry = GuestAddress(*entry);
  return out;
}

LoadedKernel load_bzimage(std::span<const uint8_t> image, const GuestMemory& mem) {
  auto hdr = read_at<setup_header>(image, kSetupHeaderOffset, "setup header");
  if (hdr.header != kHdrSMagic) throw Error("bzImage: missing HdrS magic");
  if (hdr.boot_flag != kBootFlag) throw Error("bzImage: bad boot flag (expected 0xAA55)");
  if (hdr.version < kMinBootProtocol)
    throw Error(fmt::format("bzImage: boot protocol {}.{} has no 64-bit entry (need 2.12 or later)",
                            hdr.version >> 8, hdr.version & 0xff));
  if (!(hdr.xloadflags & kXlfKernel64)) throw Error("bzImage: kernel has no 64-bit entry point");
  if (!(hdr.loadflags & kLoadedHigh)) throw Error("bzImage: not a high-loaded (bz) kernel");

  // The header runs from 0x1f1 to 0x202 + the jump's displacement byte at 0x201.
  const auto jump_end = 0x202 + uint64_t{read_at<uint8_t>(image, 0x201, "jump")};
  const auto hdr_len = std::min<uint64_t>(sizeof(setup_header), jump_end - kSetupHeaderOffset);
  std::memset(&hdr, 0, sizeof(hdr));
  std::memcpy(&hdr, image.data() + kSetupHeaderOffset, hdr_len);

  const uint64_t setup_sects = hdr.setup_sects ? hdr.setup_sects : 4;
  const uint64_t setup_size = (setup_sects + 1) * 512;
  if (setup_size >= image.size())
    throw Error(fmt::format("bzImage truncated: {} bytes of setup code but the file has {}", setup_size,
                            image.size()));
  const auto payload = image.subspan(setup_size);
  auto dst = mem.slice(GuestAddress(kBzImageLoadAddr), payload.size());
  if (!dst)
    throw Error(fmt::format("bzImage: {} MiB kernel does not fit in guest RAM", payload.size() >> 20));
  std::memcpy(dst->data(), payload.data(), payload.size());

  // Where the kernel decompresses itself to and runs (boot.rst, init_size).
  uint64_t runtime = hdr.pref_address;
  if (hdr.relocatable_kernel) {
    const uint64_t align = hdr.kernel_alignment ? hdr.kernel_alignment : 1;
    if ((align & (align - 1)) != 0) throw Error("bzImage: kernel_alignment is not a power of two");
    runtime = std::max<uint64_t>(kBzImageLoadAddr, runtime);
    runtime = (runtime + align - 1) & ~(align - 1);
  }
  if (!mem.slice(GuestAddress(runtime), hdr.init_size))
    throw Error(fmt::format("bzImage: kernel needs [{:#x}, +{:#x}) to decompress and run, beyond guest RAM "
                            "(give the guest more --memory?)",
                            runtime, uint64_t{hdr.init_size}));

  return LoadedKernel{KernelFormat::BzImage,
                      GuestAddress(kBzImageLoadAddr + kStartup64Offset),
                      std::max(kBzImageLoadAddr + payload.size(), runtime + hdr.init_size),
                      hdr,
                      hdr.cmdline_size ? uint64_t{hdr.cmdline_size} + 1 : kCmdlineMax,  // size excludes the NUL
                      hdr.initrd_addr_max ? hdr.initrd_addr_max : 0x37ffffff};
}

GuestAddress load_initrd(std::span<const uint8_t> initrd, const GuestMemory& mem,
                         const LoadedKernel& kernel, uint64_t limit) {
  constexpr uint64_t kPage = 4096;
  limit = std::min(limit, kernel.initrd_addr_max + 1);
  if (initrd.empty()) throw Error("initrd is empty");
  if (initrd.size() > limit)
    throw Error(fmt::format("initrd ({} MiB) is larger than the guest's low memory", initrd.size() >> 20));
  const uint64_t addr = (limit - initrd.size()) & ~(kPage - 1);
  if (addr < kernel.end)
    throw Error(fmt::format("initrd ({} MiB) does not fit between the kernel and the top of guest memory "
                            "(give the guest more --memory)",
                            initrd.size() >> 20));
  if (!mem.write_bytes(GuestAddress(addr), initrd))
    throw Error(fmt::format("initrd [{:#x}, +{:#x}) lies outside guest RAM", addr, initrd.size()));
  return GuestAddress(addr);
}

}  // namespace ksbox::x86
