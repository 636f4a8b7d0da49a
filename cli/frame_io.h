// Deadline-bounded, blocking-style frame I/O on a non-blocking socket, for
// short request/reply conversations (the Hello exchange of `ksbox stop`).
// The exec session has its own event loop and does not use this.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include <vector>

#include "protocol/exec_protocol.h"
#include "vmm/error.h"

namespace ksbox::cli {

using Deadline = std::chrono::steady_clock::time_point;

// Sends all bytes (MSG_NOSIGNAL). Throws Error on failure or at the deadline.
void send_all(int fd, std::span<const uint8_t> bytes, Deadline deadline);

// Encodes and sends one message. Throws Error.
template <typename M>
void send_message(int fd, const M& m, Deadline deadline) {
  std::vector<uint8_t> out;
  if (const auto e = protocol::encode(out, m); e != protocol::ProtoError::kOk)
    throw Error(std::string("cannot encode message: ") + protocol::to_string(e));
  send_all(fd, out, deadline);
}

class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd) {}
  // The next frame; nullopt when the peer closed the connection cleanly
  // between frames (ECONNRESET counts as closed). Throws Error at the
  // deadline, on a malformed frame or on a close in the middle of one.
  std::optional<protocol::Frame> next(Deadline deadline);

 private:
  int fd_;
  protocol::FrameDecoder decoder_;
};

// The client side of the Hello exchange: sends our Hello, reads the agent's
// and returns the negotiated version. Throws Error when the agent answers
// with ErrorMsg, closes, or shares no version with us.
uint16_t client_hello(int fd, FrameReader& reader, Deadline deadline);

}  // namespace ksbox::cli
