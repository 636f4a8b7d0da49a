#include "cli/frame_io.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::cli {
namespace {

using Clock = std::chrono::steady_clock;

void wait_for(int fd, short events, Deadline deadline, const char* what) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw Error(fmt::format("timed out {}", what));
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1'000'000)));
    if (n > 0) return;
    if (n < 0 && errno != EINTR) throw_errno("poll");
  }
}

}  // namespace

void send_all(int fd, std::span<const uint8_t> bytes, Deadline deadline) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      bytes = bytes.subspan(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      wait_for(fd, POLLOUT, deadline, "sending to the agent");
      continue;
    }
    throw_errno("sending to the agent");
  }
}

std::optional<protocol::Frame> FrameReader::next(Deadline deadline) {
  for (;;) {
    auto r = decoder_.next();
    if (r.status == protocol::FrameDecoder::Status::kFrame) return std::move(r.frame);
    if (r.status == protocol::FrameDecoder::Status::kError)
      throw Error(fmt::format("protocol error from the agent: {}", protocol::to_string(r.error)));
    uint8_t buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      decoder_.feed({buf, static_cast<size_t>(n)});
      continue;
    }
    if (n == 0 || errno == ECONNRESET) {
      if (decoder_.buffered() != 0) throw Error("the agent closed the connection in the middle of a message");
      return std::nullopt;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno("reading from the agent");
    wait_for(fd_, POLLIN, deadline, "waiting for the agent");
  }
}

uint16_t client_hello(int fd, FrameReader& reader, Deadline deadline) {
  const protocol::Hello ours;
  send_message(fd, ours, deadline);
  const auto f = reader.next(deadline);
  if (!f) throw Error("the agent closed the connection during the Hello exchange");
  if (f->type == protocol::MsgType::kError) {
    protocol::ErrorMsg err;
    if (protocol::decode(*f, err) != protocol::ProtoError::kOk) throw Error("malformed Error message from the agent");
    throw Error(err.message.empty() ? fmt::format("the agent refused (code {})", err.code) : err.message);
  }
  protocol::Hello theirs;
  if (const auto e = protocol::decode(*f, theirs); e != protocol::ProtoError::kOk)
    throw Error(fmt::format("expected Hello from the agent: {}", protocol::to_string(e)));
  const auto v = protocol::negotiate(ours, theirs);
  if (!v)
    throw Error(fmt::format("no common protocol version (ours {}..{}, the agent's {}..{})", ours.min_version,
                            ours.max_version, theirs.min_version, theirs.max_version));
  return *v;
}

}  // namespace ksbox::cli
