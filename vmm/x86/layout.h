// The guest-physical map of an x86_64 ksbox machine.
#pragma once

#include <cstdint>

namespace ksbox::x86 {

inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kIdtAddr = 0x540;  // after the 5-entry GDT
inline constexpr uint64_t kZeroPageAddr = 0x7000;  // struct boot_params
inline constexpr uint64_t kBootStackTop = 0x8ff0;
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;  // 4 pages: identity map of the first 4 GiB
inline constexpr uint64_t kIdentityMappedGiB = 4;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMax = 2048;  // x86 COMMAND_LINE_SIZE
inline constexpr uint64_t kEbdaStart = 0x9fc00;  // MP table lives here (scanned by Linux)
inline constexpr uint64_t kHighMemStart = 0x100000;
inline constexpr uint64_t kBzImageLoadAddr = 0x100000;

// 32-bit hole for devices: RAM above it moves to 4 GiB.
inline constexpr uint64_t kMmioGapStart = 0xc0000000;
inline constexpr uint64_t kMmioGapEnd = 0x100000000;
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
inline constexpr uint64_t kIdentityMapAddr = 0xfeffc000;  // Intel-only KVM pages
inline constexpr uint64_t kTssAddr = 0xfeffd000;

inline constexpr uint64_t kMinMemoryMiB = 64;
inline constexpr unsigned kMaxVcpus = 254;  // xAPIC ids; 255 is broadcast

}  // namespace ksbox::x86
