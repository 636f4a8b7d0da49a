// A FIFO of bytes for socket and pipe buffering: append at the back, consume
// from the front. Compacts lazily so appends and consumes stay amortised O(1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ksbox::agent {

class ByteQueue {
 public:
  size_t size() const { return buf_.size() - pos_; }
  bool empty() const { return size() == 0; }
  std::span<const uint8_t> front() const { return {buf_.data() + pos_, size()}; }

  void consume(size_t n) {
    pos_ += n;
    if (pos_ == buf_.size()) clear();
  }
  void append(std::span<const uint8_t> bytes) { appender().insert(buf_.end(), bytes.begin(), bytes.end()); }
  // The underlying vector, for encoders that append to a vector directly.
  std::vector<uint8_t>& appender() {
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
      pos_ = 0;
    }
    return buf_;
  }
  // Empties the queue; gives memory back after a burst (an idle session
  // should not pin megabytes) but keeps a steady-state buffer.
  void clear() {
    if (buf_.capacity() > kKeepCapacity) {
      std::vector<uint8_t>().swap(buf_);
    } else {
      buf_.clear();
    }
    pos_ = 0;
  }

 private:
  static constexpr size_t kKeepCapacity = size_t{2} << 20;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
};

}  // namespace ksbox::agent
