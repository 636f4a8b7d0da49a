// Reaching a guest vsock port through the VMM's Unix socket: connect to the
// socket, write "CONNECT <port>\n", read "OK <hostport>\n"; from then on the
// stream is the guest connection. The VMM closes the connection without "OK"
// while the guest is not ready, so connecting retries until a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {

inline constexpr uint32_t kAgentPort = 1024;  // ksbox-agent's vsock port

struct VsockAddress {
  std::string socket_path;  // the VMM's vsock Unix socket
  uint32_t port = kAgentPort;
};

struct ConnectPolicy {
  std::chrono::milliseconds timeout{30'000};
  // Whether a missing socket file or a refused Unix connect (the VMM not up
  // yet) is retried like a refused handshake, or fails at once.
  bool retry_unreachable_socket = true;
  // When this fd becomes readable (e.g. a signalfd), give up at once; -1: none.
  int cancel_fd = -1;
};

class ConnectError : public Error {
 public:
  enum class Reason { kUnreachable, kTimeout, kCancelled, kProtocol };
  ConnectError(Reason r, const std::string& what) : Error(what), reason_(r) {}
  Reason reason() const { return reason_; }

 private:
  Reason reason_;
};

// Connects and completes the handshake, retrying refusals with a backoff of
// 5 ms growing to 100 ms. The returned socket is O_NONBLOCK and O_CLOEXEC,
// and no byte after the "OK" line has been consumed. Throws ConnectError.
UniqueFd vsock_connect(const VsockAddress& addr, const ConnectPolicy& policy = {});

// Connects a SOCK_STREAM socket (O_NONBLOCK, O_CLOEXEC) to a Unix socket
// path. Returns the errno of a failed connect() instead of throwing, so that
// callers can tell "not there" (ENOENT, ECONNREFUSED) from other errors;
// throws Error for a path that cannot be a socket address.
struct UnixConnectResult {
  UniqueFd fd;
  int error = 0;  // errno of connect(), 0 on success
};
UnixConnectResult unix_connect(const std::string& path);

// Reads the handshake reply line one byte at a time until '\n' (so nothing
// after it is consumed), waiting until the deadline. Returns the host port of
// "OK <port>", nullopt if the peer closed before a complete line (the guest
// refused); throws ConnectError(kProtocol) for any other line,
// ConnectError(kTimeout) at the deadline and ConnectError(kCancelled) when
// cancel_fd (if >= 0) becomes readable.
std::optional<uint32_t> read_handshake_reply(int fd, std::chrono::steady_clock::time_point deadline,
                                             int cancel_fd = -1);

}  // namespace ksbox::cli
