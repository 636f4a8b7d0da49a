// Byte ranges of a descriptor chain's segments, seen as one buffer. The
// queue validated every segment when it popped the chain; each access here
// slices guest memory again, so a segment that no longer maps ends the walk
// instead of touching memory outside the guest.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>

#include "devices/virtio/queue.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::virtio {

// Calls fn(host span) for the bytes [offset, offset+len) of the concatenated
// segments, in order; fn returns false to stop. False if fn stopped, a
// segment does not map, or the segments are too short.
template <typename Fn>
bool for_each_range(const GuestMemory& mem, std::span<const Segment> segs, uint64_t offset, uint64_t len,
                    Fn&& fn) {
  for (const auto& s : segs) {
    if (len == 0) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(s.len - offset, len);
    auto host = mem.slice(GuestAddress(s.addr.value() + offset), n);
    if (!host) return false;
    if (!fn(*host)) return false;
    len -= n;
    offset = 0;
  }
  return len == 0;
}

// Copies out.size() bytes from `offset` of the segments into `out`.
inline bool read_segments(const GuestMemory& mem, std::span<const Segment> segs, uint64_t offset,
                          std::span<uint8_t> out) {
  size_t done = 0;
  return for_each_range(mem, segs, offset, out.size(), [&](std::span<uint8_t> s) {
    std::memcpy(out.data() + done, s.data(), s.size());
    done += s.size();
    return true;
  });
}

// Copies `data` to `offset` of the segments.
inline bool write_segments(const GuestMemory& mem, std::span<const Segment> segs, uint64_t offset,
                           std::span<const uint8_t> data) {
  size_t done = 0;
  return for_each_range(mem, segs, offset, data.size(), [&](std::span<uint8_t> s) {
    std::memcpy(s.data(), data.data() + done, s.size());
    done += s.size();
    return true;
  });
}

}  // namespace ksbox::devices::virtio
