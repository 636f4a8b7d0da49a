#include "devices/fs/fuse_wire.h"

#include <algorithm>
#include <climits>
#include <cstring>

namespace ksbox::devices::fs {

size_t total_size(InSpans spans) {
  size_t n = 0;
  for (const auto& s : spans) n += s.size();
  return n;
}

size_t total_size(OutSpans spans) {
  size_t n = 0;
  for (const auto& s : spans) n += s.size();
  return n;
}

RequestReader::RequestReader(InSpans spans, size_t limit) : spans_(spans), limit_(limit) {
  const size_t have = total_size(spans);
  if (limit_ > have) limit_ = have;
}

bool RequestReader::read_spanning(void* dst, size_t n) {
  if (n > remaining()) return false;
  auto* out = static_cast<uint8_t*>(dst);
  size_t done = 0;
  while (done < n) {
    const auto& s = spans_[seg_];
    const size_t chunk = std::min(n - done, s.size() - seg_off_);
    std::memcpy(out + done, s.data() + seg_off_, chunk);
    done += chunk;
    seg_off_ += chunk;
    if (seg_off_ == s.size()) {
      ++seg_;
      seg_off_ = 0;
    }
  }
  pos_ += n;
  return true;
}

bool RequestReader::take_spans(size_t n, SpanList<const uint8_t>& out) {
  out.clear();
  if (n > remaining()) return false;
  size_t done = 0;
  while (done < n) {
    const auto& s = spans_[seg_];
    const size_t chunk = std::min(n - done, s.size() - seg_off_);
    if (chunk) out.push_back(s.subspan(seg_off_, chunk));
    done += chunk;
    seg_off_ += chunk;
    if (seg_off_ == s.size()) {
      ++seg_;
      seg_off_ = 0;
    }
  }
  pos_ += n;
  return true;
}

bool RequestReader::read_cstring(size_t max_len, std::vector<char>& out) {
  out.clear();
  // Find the NUL without consuming (a span at a time), then consume string + NUL.
  const size_t limit = std::min(remaining(), max_len + 1);  // bytes that may hold it
  size_t seg = seg_, off = seg_off_;
  for (size_t i = 0; i < limit;) {
    const auto& s = spans_[seg];
    const size_t n = std::min(s.size() - off, limit - i);
    if (const void* nul = std::memchr(s.data() + off, '\0', n)) {
      i += static_cast<size_t>(static_cast<const uint8_t*>(nul) - (s.data() + off));
      out.resize(i);
      if (i) read(out.data(), i);
      char c;
      read(&c, 1);
      return true;
    }
    i += n;
    ++seg;
    off = 0;
  }
  return false;
}

ReplyWriter::ReplyWriter(OutSpans spans) : spans_(spans), capacity_(total_size(spans)) {}

// Calls `f(part)` for the sub-spans of [off, off+n) in order.
template <typename F>
void ReplyWriter::for_each_part(size_t off, size_t n, F f) const {
  for (const auto& s : spans_) {
    if (n == 0) break;
    if (off >= s.size()) {
      off -= s.size();
      continue;
    }
    const size_t chunk = std::min(n, s.size() - off);
    f(s.subspan(off, chunk));
    n -= chunk;
    off = 0;
  }
}

bool ReplyWriter::write_at(size_t off, const void* src, size_t n) {
  if (off > capacity_ || n > capacity_ - off) return false;
  const auto* in = static_cast<const uint8_t*>(src);
  for_each_part(off, n, [&](std::span<uint8_t> part) {
    std::memcpy(part.data(), in, part.size());
    in += part.size();
  });
  return true;
}

SpanList<uint8_t> ReplyWriter::spans_at(size_t off, size_t n) const {
  SpanList<uint8_t> out;
  for_each_part(off, n, [&](std::span<uint8_t> part) { out.push_back(part); });
  return out;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > NAME_MAX) return false;
  if (name == "." || name == "..") return false;
  // One pass: names are short, and two memchr calls cost more than the scan.
  return std::none_of(name.begin(), name.end(), [](char c) { return c == '/' || c == '\0'; });
}

}  // namespace ksbox::devices::fs
