#include "devices/blk/request.h"

#include <cstring>
#include <optional>
#include <span>

namespace ksbox::devices::blk {
namespace {

using Outcome = ParseResult::Outcome;
constexpr uint32_t kHeaderBytes = sizeof(virtio_blk_outhdr);
constexpr uint32_t kRangeBytes = sizeof(virtio_blk_discard_write_zeroes);
static_assert(kHeaderBytes == 16 && kRangeBytes == 16);

// Host views of bytes [from, to) of a segment list, in order; nullopt if a
// segment is not guest RAM (pop() checked; checked again, never trusted).
std::optional<std::vector<iovec>> carve(const GuestMemory& mem, std::span<const virtio::Segment> segs, uint64_t from,
                                        uint64_t to) {
  std::vector<iovec> out;
  uint64_t pos = 0;
  for (const auto& s : segs) {
    const uint64_t start = pos, end = pos + s.len;
    pos = end;
    if (end <= from || s.len == 0) continue;
    if (start >= to) break;
    const uint64_t a = std::max(start, from), b = std::min(end, to);
    auto view = mem.slice(GuestAddress(s.addr.value() + (a - start)), b - a);
    if (!view) return std::nullopt;
    out.push_back({view->data(), view->size()});
  }
  return out;
}

// Copies bytes [from, from + n) of a segment list into `dst`.
bool gather(const GuestMemory& mem, std::span<const virtio::Segment> segs, uint64_t from, std::span<uint8_t> dst) {
  auto views = carve(mem, segs, from, from + dst.size());
  if (!views) return false;
  size_t at = 0;
  for (const auto& v : *views) {
    std::memcpy(dst.data() + at, v.iov_base, v.iov_len);
    at += v.iov_len;
  }
  return at == dst.size();
}

// The sector range [sector, sector + count) lies inside the disk.
bool in_range(uint64_t sector, uint64_t count, uint64_t capacity) {
  return sector <= capacity && count <= capacity - sector;
}

ParseResult reply(ParseResult r, ParseError e) {
  r.outcome = Outcome::kReply;
  r.error = e;
  r.status = e == ParseError::kUnsupported || e == ParseError::kBadRangeFlags ? VIRTIO_BLK_S_UNSUPP
                                                                               : VIRTIO_BLK_S_IOERR;
  return r;
}

// DISCARD and WRITE_ZEROES: an array of 16-byte ranges after the header.
ParseResult parse_ranges(ParseResult r, const virtio::DescriptorChain& chain, const GuestMemory& mem,
                         const BlkLimits& limits) {
  const bool discard = r.request.type == VIRTIO_BLK_T_DISCARD;
  if (!(discard ? limits.discard : limits.write_zeroes)) return reply(std::move(r), ParseError::kUnsupported);
  if (limits.read_only) return reply(std::move(r), ParseError::kReadOnly);
  if (chain.writable_bytes != 1) return reply(std::move(r), ParseError::kWrongDirection);
  const uint64_t payload = chain.readable_bytes - kHeaderBytes;
  const uint32_t max_seg = discard ? limits.max_discard_seg : limits.max_write_zeroes_seg;
  const uint32_t max_sectors = discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors;
  if (payload == 0 || payload % kRangeBytes != 0 || payload / kRangeBytes > max_seg)
    return reply(std::move(r), ParseError::kBadRanges);
  for (uint64_t off = kHeaderBytes; off < chain.readable_bytes; off += kRangeBytes) {
    virtio_blk_discard_write_zeroes raw{};
    if (!gather(mem, chain.readable, off, {reinterpret_cast<uint8_t*>(&raw), sizeof raw}))
      return reply(std::move(r), ParseError::kBadMemory);
    const uint32_t unmap = raw.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
    if ((raw.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0 || (discard && unmap))
      return reply(std::move(r), ParseError::kBadRangeFlags);
    if (raw.num_sectors > max_sectors) return reply(std::move(r), ParseError::kRangeTooLarge);
    if (!in_range(raw.sector, raw.num_sectors, limits.capacity_sectors))
      return reply(std::move(r), ParseError::kOutOfRange);
    r.request.ranges.push_back({raw.sector, raw.num_sectors, unmap != 0});
  }
  r.outcome = Outcome::kRun;
  return r;
}

}  // namespace

const char* to_string(ParseError e) {
  switch (e) {
    case ParseError::kNone: return "none";
    case ParseError::kNoStatusByte: return "no writable status byte";
    case ParseError::kShortHeader: return "header shorter than 16 bytes";
    case ParseError::kUnsupported: return "unsupported request type";
    case ParseError::kBadLength: return "data length not a multiple of 512";
    case ParseError::kOutOfRange: return "sectors beyond the disk";
    case ParseError::kReadOnly: return "write to a read-only disk";
    case ParseError::kWrongDirection: return "data in the wrong direction";
    case ParseError::kTooManySegments: return "more data segments than seg_max";
    case ParseError::kBadRanges: return "malformed discard/write-zeroes ranges";
    case ParseError::kRangeTooLarge: return "discard/write-zeroes range too large";
    case ParseError::kBadRangeFlags: return "reserved discard/write-zeroes flags";
    case ParseError::kBadMemory: return "buffer outside guest RAM";
    case ParseError::kCount: break;
  }
  return "unknown";
}

uint64_t ParseStats::total() const {
  uint64_t n = 0;
  for (const auto& c : counts_) n += c.get();
  return n;
}

ParseResult parse_request(const virtio::DescriptorChain& chain, const GuestMemory& mem, const BlkLimits& limits) {
  ParseResult r;
  if (chain.writable_bytes == 0) {
    r.error = ParseError::kNoStatusByte;
    return r;
  }
  // The status byte: the last writable byte, wherever the driver put it.
  const uint64_t status_at = chain.writable_bytes - 1;
  auto status = carve(mem, chain.writable, status_at, chain.writable_bytes);
  if (!status || status->size() != 1) {
    r.error = ParseError::kBadMemory;  // cannot answer: treat like no status byte
    return r;
  }
  BlkRequest& req = r.request;
  req.status = static_cast<uint8_t*>((*status)[0].iov_base);
  req.used_len = 1;
  if (chain.readable_bytes < kHeaderBytes) return reply(std::move(r), ParseError::kShortHeader);
  virtio_blk_outhdr hdr{};
  if (!gather(mem, chain.readable, 0, {reinterpret_cast<uint8_t*>(&hdr), sizeof hdr}))
    return reply(std::move(r), ParseError::kBadMemory);
  req.type = hdr.type;  // little-endian host (x86_64)
  req.sector = hdr.sector;
  const uint64_t readable_data = chain.readable_bytes - kHeaderBytes;
  const uint64_t writable_data = status_at;

  switch (req.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      const bool in = req.type == VIRTIO_BLK_T_IN;
      if (!in && limits.read_only) return reply(std::move(r), ParseError::kReadOnly);
      if (in ? readable_data != 0 : writable_data != 0) return reply(std::move(r), ParseError::kWrongDirection);
      const uint64_t bytes = in ? writable_data : readable_data;
      if (bytes % kSectorSize != 0) return reply(std::move(r), ParseError::kBadLength);
      if (!in_range(req.sector, bytes / kSectorSize, limits.capacity_sectors))
        return reply(std::move(r), ParseError::kOutOfRange);
      auto data = in ? carve(mem, chain.writable, 0, writable_data)
                     : carve(mem, chain.readable, kHeaderBytes, chain.readable_bytes);
      if (!data) return reply(std::move(r), ParseError::kBadMemory);
      if (data->size() > limits.max_segments) return reply(std::move(r), ParseError::kTooManySegments);
      req.data = std::move(*data);
      req.data_bytes = bytes;
      // A read reports the whole writable part as written, data and status.
      if (in) req.used_len = chain.writable_bytes;
      r.outcome = Outcome::kRun;
      return r;
    }
    case VIRTIO_BLK_T_FLUSH:
      if (!limits.flush) return reply(std::move(r), ParseError::kUnsupported);
      if (readable_data != 0 || writable_data != 0) return reply(std::move(r), ParseError::kWrongDirection);
      r.outcome = Outcome::kRun;
      return r;
    case VIRTIO_BLK_T_GET_ID: {
      if (readable_data != 0) return reply(std::move(r), ParseError::kWrongDirection);
      // Up to 20 bytes of ID; a smaller buffer gets a truncated one.
      const uint64_t n = std::min<uint64_t>(writable_data, VIRTIO_BLK_ID_BYTES);
      auto data = carve(mem, chain.writable, 0, n);
      if (!data) return reply(std::move(r), ParseError::kBadMemory);
      req.data = std::move(*data);
      req.data_bytes = n;
      req.used_len = chain.writable_bytes;
      r.outcome = Outcome::kRun;
      return r;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
      return parse_ranges(std::move(r), chain, mem, limits);
    default:
      return reply(std::move(r), ParseError::kUnsupported);
  }
}

}  // namespace ksbox::devices::blk
