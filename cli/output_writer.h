// Writes the remote command's output to our stdout/stderr from a thread of
// its own, so that a slow or blocked consumer (a pager, a full pipe, a
// terminal under flow control) never blocks the exec loop, which must keep
// handling signals and stdin. The loop applies backpressure by not reading
// the connection while pending() is high.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "vmm/unique_fd.h"

namespace ksbox::cli {

class OutputWriter {
 public:
  // A write failure on one of the fds: data for that fd is discarded from
  // then on. error is EPIPE for a closed reader.
  struct Failure {
    int fd;
    int error;
  };

  // Starts the thread with all signals blocked. Throws Error.
  OutputWriter();
  // Stops the thread. Queued data that was not written yet is dropped: call
  // it after waiting for pending() == 0 to flush. If the thread is stuck in a
  // blocking write() it is left behind (detached); the process is about to
  // exit then.
  ~OutputWriter();
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  // Queues bytes for fd, in order with all other queued bytes. Never blocks.
  void push(int fd, std::vector<uint8_t> bytes);
  // Bytes queued or being written.
  size_t pending() const;
  // Readable after any progress or failure; clear with ack().
  int notify_fd() const;
  void ack();
  // Failures since the last call.
  std::vector<Failure> take_failures();
  // Drops everything queued (the chunk being written completes).
  void discard();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ksbox::cli
