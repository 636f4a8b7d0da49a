// AsyncIo over io_uring: ops go to the kernel in batches (flush()), run
// there while the device thread serves more requests, and complete through
// the CQ. An eventfd registered with the ring makes completions visible to
// the device thread's epoll loop. Short reads and writes are continued and
// -EAGAIN retried inside the engine, so callers see whole results only.
#pragma once

#include <vector>

#include "devices/io/async_io.h"
#include "devices/io/uring.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::io {

class UringAsyncIo final : public AsyncIo {
 public:
  // A ring with room for `capacity` ops in flight. Throws ksbox::Error (see
  // Uring) when io_uring cannot be used.
  UringAsyncIo(unsigned capacity, std::string_view purpose);
  ~UringAsyncIo() override;  // waits for the ops still in flight

  size_t capacity() const override { return slots_.size(); }
  size_t in_flight() const override { return in_flight_; }
  bool submit(const IoOp& op) override;
  void flush() override;
  void reap(std::vector<IoCompletion>& out) override;
  void drain(std::vector<IoCompletion>& out) override;
  int event_fd() const override { return event_fd_.get(); }
  void ack_event() override;
  std::string_view name() const override { return "io_uring"; }

 private:
  struct Slot {
    IoOp op;
    std::vector<iovec> iov;  // what is left to move (op.offset is where it goes)
    uint64_t moved = 0;      // bytes moved so far (reads and writes)
    unsigned retries = 0;    // -EAGAIN resubmissions
    bool busy = false;
  };
  // Prepares the SQE for the rest of `slot`'s op.
  void prepare(uint32_t index);
  // Consumes one CQE: true (and `out` filled) when its op is finished.
  bool finish(const io_uring_cqe& cqe, IoCompletion& out);

  Uring ring_;
  UniqueFd event_fd_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  size_t in_flight_ = 0;
  size_t unsubmitted_ = 0;
};

}  // namespace ksbox::devices::io
