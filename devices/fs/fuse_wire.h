// FUSE wire helpers: reading a request out of scattered readable spans and
// writing a reply into scattered writable spans (a virtqueue chain's shape).
//
// Everything read is guest-controlled. The reader never reads past what
// arrived; the writer never writes past the writable space. Protocol structs
// come from the kernel's uapi copy of fuse_kernel.h (<linux/fuse.h>).
#pragma once

#include <linux/fuse.h>

#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ksbox::devices::fs {

using InSpans = std::span<const std::span<const uint8_t>>;
using OutSpans = std::span<const std::span<uint8_t>>;
// Sub-spans of a request or reply: a page or two, held without a heap
// allocation per request (a long chain still fits, on the heap).
template <typename T>
using SpanList = boost::container::small_vector<std::span<T>, 4>;

size_t total_size(InSpans spans);
size_t total_size(OutSpans spans);

// Sequential reader over the readable spans, limited to `limit` bytes.
class RequestReader {
 public:
  RequestReader(InSpans spans, size_t limit);

  size_t remaining() const { return limit_ - pos_; }
  // Copies `n` bytes; false (and nothing consumed) if fewer remain.
  bool read(void* dst, size_t n) {
    // Inline for the usual case, bytes within the current span: one copy,
    // of a size known at the call site for read<T>().
    if (seg_ < spans_.size() && n <= remaining()) {
      const size_t left = spans_[seg_].size() - seg_off_;
      if (n <= left) {
        std::memcpy(dst, spans_[seg_].data() + seg_off_, n);
        pos_ += n;
        if (n == left) {
          ++seg_;
          seg_off_ = 0;
        } else {
          seg_off_ += n;
        }
        return true;
      }
    }
    return read_spanning(dst, n);
  }
  template <typename T>
  std::optional<T> read() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    if (!read(&v, sizeof v)) return std::nullopt;
    return v;
  }
  // The next `n` bytes as sub-spans of the input into `out`, without
  // copying; false (and nothing consumed) if fewer remain.
  bool take_spans(size_t n, SpanList<const uint8_t>& out);
  // A NUL-terminated string of at most `max_len` bytes (the NUL excluded)
  // copied into `out`; false if no NUL arrives in time.
  bool read_cstring(size_t max_len, std::vector<char>& out);

 private:
  InSpans spans_;
  size_t limit_;
  size_t pos_ = 0;
  size_t seg_ = 0;      // current span
  size_t seg_off_ = 0;  // offset inside it

  bool read_spanning(void* dst, size_t n);
};

// Writes at absolute offsets into the writable spans.
class ReplyWriter {
 public:
  explicit ReplyWriter(OutSpans spans);
  size_t capacity() const { return capacity_; }
  // False if [off, off+n) does not fit.
  bool write_at(size_t off, const void* src, size_t n);
  // [off, off+n) as sub-spans of the output (n must fit).
  SpanList<uint8_t> spans_at(size_t off, size_t n) const;

 private:
  template <typename F>
  void for_each_part(size_t off, size_t n, F f) const;

  OutSpans spans_;
  size_t capacity_;
};

// A single path component as FUSE sends it: non-empty, at most NAME_MAX
// bytes, no '/', no NUL, not "." or "..".
bool valid_name(std::string_view name);

}  // namespace ksbox::devices::fs
