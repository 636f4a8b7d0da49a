#include "devices/balloon/balloon_request.h"

#include <array>
#include <cstring>

#include "devices/virtio/segments.h"

namespace ksbox::devices::balloon {
namespace {

// Appends one range (known to be RAM), merged with the last range when
// adjacent and the union stays inside one region.
void append(std::vector<PageRange>& out, const GuestMemory& mem, GuestAddress addr, uint64_t len) {
  if (!out.empty()) {
    auto& last = out.back();
    const uint64_t sum = last.len + len;
    if (last.addr.value() + last.len == addr.value() && mem.slice(last.addr, sum)) {
      last.len = sum;
      return;
    }
    // Drivers often hand out pages downwards.
    if (addr.value() + len == last.addr.value() && mem.slice(addr, sum)) {
      last = {addr, sum};
      return;
    }
  }
  out.push_back({addr, len});
}

// The readable bytes of `chain` as a whole number of `entry`-byte entries,
// at most `max_entries` of them; kNone and the entry count, or the reason.
RequestError check_readable(const virtio::DescriptorChain& chain, uint32_t entry, uint32_t max_entries,
                            uint32_t& count) {
  if (!chain.writable.empty()) return RequestError::kWrongDirection;
  if (chain.readable_bytes == 0) return RequestError::kEmpty;
  if (chain.readable_bytes % entry != 0) return RequestError::kBadLength;
  count = chain.readable_bytes / entry;
  if (count > max_entries) return RequestError::kTooLarge;
  return RequestError::kNone;
}

}  // namespace

const char* to_string(RequestError e) {
  switch (e) {
    case RequestError::kNone: return "none";
    case RequestError::kEmpty: return "empty";
    case RequestError::kWrongDirection: return "wrong direction";
    case RequestError::kBadLength: return "bad length";
    case RequestError::kTooLarge: return "too large";
    case RequestError::kOutOfRam: return "out of RAM";
    case RequestError::kMisaligned: return "misaligned";
    case RequestError::kBadMemory: return "bad memory";
    case RequestError::kCount: break;
  }
  return "?";
}

PageRequest parse_pfn_list(const virtio::DescriptorChain& chain, const GuestMemory& mem) {
  PageRequest r;
  uint32_t count = 0;
  r.error = check_readable(chain, sizeof(uint32_t), kMaxPfnsPerRequest, count);
  if (r.error != RequestError::kNone) return r;
  // One copy out of guest memory: the guest may rewrite the array meanwhile.
  std::vector<uint32_t> pfns(count);
  if (!virtio::read_segments(mem, chain.readable, 0,
                             {reinterpret_cast<uint8_t*>(pfns.data()), count * sizeof(uint32_t)})) {
    r.error = RequestError::kBadMemory;
    return r;
  }
  for (const uint32_t pfn : pfns) {  // little-endian host (ring.h)
    const GuestAddress addr(uint64_t{pfn} * kPageSize);
    if (!mem.slice(addr, kPageSize)) {
      r.error = RequestError::kOutOfRam;
      r.ranges.clear();
      return r;
    }
    append(r.ranges, mem, addr, kPageSize);
  }
  r.pages = count;
  return r;
}

PageRequest parse_report(const virtio::DescriptorChain& chain, const GuestMemory& mem) {
  PageRequest r;
  if (!chain.readable.empty()) {
    r.error = RequestError::kWrongDirection;
    return r;
  }
  if (chain.writable.empty()) {
    r.error = RequestError::kEmpty;
    return r;
  }
  for (const auto& seg : chain.writable) {
    if (seg.len == 0 || seg.addr.value() % kPageSize != 0 || seg.len % kPageSize != 0) {
      r.error = RequestError::kMisaligned;
      break;
    }
    // pop() checked this already; checked again, as every use of a guest range is.
    if (!mem.slice(seg.addr, seg.len)) {
      r.error = RequestError::kOutOfRam;
      break;
    }
    append(r.ranges, mem, seg.addr, seg.len);
    r.pages += seg.len / kPageSize;
  }
  if (r.error != RequestError::kNone) {
    r.ranges.clear();
    r.pages = 0;
  }
  return r;
}

StatsRequest parse_stats(const virtio::DescriptorChain& chain, const GuestMemory& mem) {
  StatsRequest r;
  uint32_t count = 0;
  r.error = check_readable(chain, kStatBytes, kMaxStatsPerRequest, count);
  if (r.error != RequestError::kNone) return r;
  std::array<uint8_t, kMaxStatsPerRequest * kStatBytes> raw{};
  if (!virtio::read_segments(mem, chain.readable, 0, std::span(raw).first(count * kStatBytes))) {
    r.error = RequestError::kBadMemory;
    return r;
  }
  for (uint32_t i = 0; i < count; ++i) {
    BalloonStat s;
    std::memcpy(&s.tag, raw.data() + i * kStatBytes, sizeof s.tag);
    std::memcpy(&s.val, raw.data() + i * kStatBytes + sizeof s.tag, sizeof s.val);
    r.stats.push_back(s);
  }
  return r;
}

}  // namespace ksbox::devices::balloon
