// One virtio-blk request (virtio 1.2 §5.2.6) parsed from a descriptor chain
// and validated before the device acts on it. The chain's framing is not
// trusted: the header, the data and the status byte may be split across or
// share descriptors; only byte counts matter. The status byte is the last
// writable byte.
//
// Every outcome is one of: a request to run (kRun), a status to write right
// away (kReply: IOERR or UNSUPP, counted by reason), or a chain with no
// status byte at all (kNoStatus: completed empty, counted).
#pragma once

#include <linux/virtio_blk.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <vector>

#include "devices/virtio/queue.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::blk {

inline constexpr uint64_t kSectorSize = 512;

// What the device offers; the parser refuses everything outside it.
struct BlkLimits {
  uint64_t capacity_sectors = 0;
  bool read_only = false;
  bool flush = false;         // VIRTIO_BLK_F_FLUSH negotiated
  bool discard = false;       // VIRTIO_BLK_F_DISCARD negotiated
  bool write_zeroes = false;  // VIRTIO_BLK_F_WRITE_ZEROES negotiated
  uint32_t max_segments = 0;  // data descriptors per request (seg_max, plus slack)
  uint32_t max_discard_sectors = 0, max_discard_seg = 0;
  uint32_t max_write_zeroes_sectors = 0, max_write_zeroes_seg = 0;
};

enum class ParseError : uint8_t {
  kNone,
  kNoStatusByte,     // no writable byte: cannot even answer (kNoStatus)
  kShortHeader,      // fewer than 16 readable bytes
  kUnsupported,      // unknown type, or a feature the driver did not negotiate (UNSUPP)
  kBadLength,        // data not a multiple of 512
  kOutOfRange,       // sector range past the capacity, or overflowing
  kReadOnly,         // a write to a read-only disk
  kWrongDirection,   // data in the readable part of a read, or the reverse
  kTooManySegments,  // more data buffers than seg_max allows
  kBadRanges,        // discard/write-zeroes payload: empty, ragged, too many ranges
  kRangeTooLarge,    // one range above max_*_sectors
  kBadRangeFlags,    // reserved flag bits, or unmap on a discard (UNSUPP)
  kBadMemory,        // a buffer stopped being guest RAM (never after pop())
  kCount,
};
const char* to_string(ParseError e);

struct Range {
  uint64_t sector = 0;
  uint32_t sectors = 0;
  bool unmap = false;
};

struct BlkRequest {
  uint32_t type = 0;  // VIRTIO_BLK_T_IN, _OUT, _FLUSH, _GET_ID, _DISCARD, _WRITE_ZEROES
  uint64_t sector = 0;
  std::vector<iovec> data;  // host views of guest RAM, in order (IN, OUT, GET_ID)
  uint64_t data_bytes = 0;
  std::vector<Range> ranges;  // DISCARD, WRITE_ZEROES (copied out of the guest)
  uint8_t* status = nullptr;  // the status byte in guest RAM
  uint32_t used_len = 0;      // what to report as written on completion
};

struct ParseResult {
  enum class Outcome : uint8_t { kRun, kReply, kNoStatus };
  Outcome outcome = Outcome::kNoStatus;
  ParseError error = ParseError::kNone;
  uint8_t status = VIRTIO_BLK_S_OK;  // kReply: what to write
  BlkRequest request;                // status/used_len valid for kRun and kReply
};

ParseResult parse_request(const virtio::DescriptorChain& chain, const GuestMemory& mem, const BlkLimits& limits);

// Guest-caused parse errors by kind.
class ParseStats {
 public:
  void count(ParseError e) { counts_[static_cast<size_t>(e)].inc(); }
  uint64_t get(ParseError e) const { return counts_[static_cast<size_t>(e)].get(); }
  uint64_t total() const;

 private:
  std::array<virtio::Counter, static_cast<size_t>(ParseError::kCount)> counts_{};
};

}  // namespace ksbox::devices::blk
