// The requests a virtio-balloon driver sends (virtio 1.2 §5.5.6), parsed from
// descriptor chains and validated before the device acts on them:
//  - inflateq / deflateq: an array of le32 page frame numbers (4 KiB pages,
//    VIRTIO_BALLOON_PFN_SHIFT) in device-readable buffers;
//  - reporting_vq: free page ranges, one per device-writable buffer (the
//    device only discards them; it writes nothing);
//  - statsq: an array of {le16 tag, le64 val} in device-readable buffers.
// Everything here comes from the guest: a request is used whole or refused
// whole, with the reason counted, before any page is touched.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/virtio/queue.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::balloon {

inline constexpr uint64_t kPageSize = GuestMemory::kPageSize;  // one balloon PFN
// Linux sends at most 256 PFNs a request; room for other drivers, bounded.
inline constexpr uint32_t kMaxPfnsPerRequest = 4096;
inline constexpr uint32_t kMaxStatsPerRequest = 32;  // Linux 6.1 sends 10
inline constexpr uint32_t kStatBytes = 10;           // packed struct virtio_balloon_stat

enum class RequestError : uint8_t {
  kNone,
  kEmpty,           // no bytes at all
  kWrongDirection,  // PFNs or stats in writable buffers, a report in readable ones
  kBadLength,       // not a whole number of entries
  kTooLarge,        // more PFNs or stats than one request may carry
  kOutOfRam,        // a PFN or range that is not guest RAM (or crosses a region)
  kMisaligned,      // a reported range not made of whole pages
  kBadMemory,       // a buffer stopped mapping (never after pop())
  kCount,
};
const char* to_string(RequestError e);

// Whole guest pages [addr, addr+len), inside one RAM region.
struct PageRange {
  GuestAddress addr;
  uint64_t len = 0;
  bool operator==(const PageRange&) const = default;
};

struct PageRequest {
  RequestError error = RequestError::kNone;
  std::vector<PageRange> ranges;  // adjacent pages merged, in request order
  uint64_t pages = 0;             // PFNs in the request (duplicates counted)
};

// An inflate or deflate request: the PFN array, every page checked to be RAM.
PageRequest parse_pfn_list(const virtio::DescriptorChain& chain, const GuestMemory& mem);
// A free page report: each writable buffer is one range of whole pages.
PageRequest parse_report(const virtio::DescriptorChain& chain, const GuestMemory& mem);

struct BalloonStat {
  uint16_t tag = 0;  // VIRTIO_BALLOON_S_*; unknown tags are kept as they are
  uint64_t val = 0;
  bool operator==(const BalloonStat&) const = default;
};

struct StatsRequest {
  RequestError error = RequestError::kNone;
  std::vector<BalloonStat> stats;
};

StatsRequest parse_stats(const virtio::DescriptorChain& chain, const GuestMemory& mem);

}  // namespace ksbox::devices::balloon
