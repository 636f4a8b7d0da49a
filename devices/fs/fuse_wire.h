// FUSE wire helpers: reading a request out of scattered readable spans and
// writing a reply into scattered writable spans (a virtqueue chain's shape).
//
// Everything read is guest-controlled. The reader never reads past what
// arrived; the writer never writes past the writable space. Protocol structs
// come from the kernel's uapi copy of fuse_kernel.h (<linux/fuse.h>).
#pragma once

#include <linux/fuse.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ksbox::devices::fs {

using InSpans = std::span<const std::span<const uint8_t>>;
using OutSpans = std::span<const std::span<uint8_t>>;

size_t total_size(InSpans spans);
size_t total_size(OutSpans spans);

// Sequential reader over the readable spans, limited to `limit` bytes.
class RequestReader {
 public:
  RequestReader(InSpans spans, size_t limit);

  size_t remaining() const { return limit_ - pos_; }
  // Copies `n` bytes; false (and nothing consumed) if fewer remain.
  bool read(void* dst, size_t n);
  template <typename T>
  std::optional<T> read() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    if (!read(&v, sizeof v)) return std::nullopt;
    return v;
  }
  // The next `n` bytes as sub-spans of the input, without copying.
  std::optional<std::vector<std::span<const uint8_t>>> take_spans(size_t n);
  // A NUL-terminated string of at most `max_len` bytes (the NUL excluded)
  // copied into `out`; false if no NUL arrives in time.
  bool read_cstring(size_t max_len, std::vector<char>& out);

 private:
  InSpans spans_;
  size_t limit_;
  size_t pos_ = 0;
  size_t seg_ = 0;      // current span
  size_t seg_off_ = 0;  // offset inside it
};

// Writes at absolute offsets into the writable spans.
class ReplyWriter {
 public:
  explicit ReplyWriter(OutSpans spans);
  size_t capacity() const { return capacity_; }
  // False if [off, off+n) does not fit.
  bool write_at(size_t off, const void* src, size_t n);
  // [off, off+n) as sub-spans of the output (n must fit).
  std::vector<std::span<uint8_t>> spans_at(size_t off, size_t n) const;

 private:
  OutSpans spans_;
  size_t capacity_;
};

// A single path component as FUSE sends it: non-empty, at most NAME_MAX
// bytes, no '/', no NUL, not "." or "..".
bool valid_name(std::string_view name);

}  // namespace ksbox::devices::fs
