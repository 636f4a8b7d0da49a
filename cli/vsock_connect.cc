#include "cli/vsock_connect.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace ksbox::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxReplyLine = 64;  // "OK 4294967295\n" is 14 bytes
constexpr milliseconds kFirstBackoff{5};
constexpr milliseconds kMaxBackoff{100};

int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000));
}

// Waits for fd to be ready for `events` (or for cancel_fd to be readable)
// until the deadline.
enum class Wait { kReady, kTimeout, kCancelled };
Wait wait_fd(int fd, short events, Clock::time_point deadline, int cancel_fd) {
  for (;;) {
    pollfd p[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    const int n = ::poll(p, cancel_fd >= 0 ? 2 : 1, ms_until(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (cancel_fd >= 0 && (p[1].revents & POLLIN)) return Wait::kCancelled;
    if (p[0].revents) return Wait::kReady;
    if (Clock::now() >= deadline) return Wait::kTimeout;
  }
}

std::optional<uint32_t> parse_ok_line(std::string_view line) {
  if (!line.starts_with("OK ")) return std::nullopt;
  line.remove_prefix(3);
  uint32_t port = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), port);
  if (ec != std::errc{} || end != line.data() + line.size() || line.empty()) return std::nullopt;
  return port;
}

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c >= 0x20 && c < 0x7f)
      out += c;
    else
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
  }
  return out;
}

// The outcome of one connection attempt that did not throw.
struct Attempt {
  UniqueFd fd;               // valid on success
  bool unreachable = false;  // the Unix connect itself failed: ENOENT, ECONNREFUSED
  bool fatal = false;        // the Unix connect failed for a reason retrying cannot fix
  bool timed_out = false;    // the deadline passed during the attempt
  std::string why;           // for the final message when we give up
};

Attempt try_once(const VsockAddress& addr, Clock::time_point deadline, int cancel_fd) {
  Attempt a;
  UnixConnectResult c = unix_connect(addr.socket_path);
  if (c.error == EINPROGRESS || c.error == EAGAIN) {
    // A full listen backlog: the VMM is busy; treat it like a refusal.
    a.why = fmt::format("connect {}: {}", addr.socket_path, std::strerror(c.error));
    return a;
  }
  if (c.error != 0) {
    a.unreachable = c.error == ENOENT || c.error == ECONNREFUSED;
    a.fatal = !a.unreachable;
    a.why = fmt::format("connect {}: {}", addr.socket_path, std::strerror(c.error));
    return a;
  }
  const std::string req = fmt::format("CONNECT {}\n", addr.port);
  size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(c.fd.get(), req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n >= 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      const Wait w = wait_fd(c.fd.get(), POLLOUT, deadline, cancel_fd);
      if (w == Wait::kCancelled) throw ConnectError(ConnectError::Reason::kCancelled, "cancelled");
      if (w == Wait::kTimeout) {
        a.timed_out = true;
        a.why = "timed out sending the CONNECT request";
        return a;
      }
      continue;
    }
    a.why = fmt::format("sending CONNECT: {}", std::strerror(errno));  // EPIPE: closed under us
    return a;
  }
  try {
    if (read_handshake_reply(c.fd.get(), deadline, cancel_fd)) {
      a.fd = std::move(c.fd);
      return a;
    }
  } catch (const ConnectError& e) {
    if (e.reason() != ConnectError::Reason::kTimeout) throw;
    a.timed_out = true;
    a.why = "timed out waiting for the VMM's reply";
    return a;
  }
  a.why = fmt::format("the VMM closed the connection to guest port {} (guest agent not ready)", addr.port);
  return a;
}

}  // namespace

UnixConnectResult unix_connect(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path))
    throw Error(fmt::format("socket path '{}' is {} (the limit is {} bytes)", path,
                            path.empty() ? "empty" : "too long", sizeof(sa.sun_path) - 1));
  std::memcpy(sa.sun_path, path.data(), path.size());
  UnixConnectResult r;
  r.fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!r.fd) throw_errno("socket(AF_UNIX)");
  while (::connect(r.fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno == EINTR) continue;
    r.error = errno;
    r.fd.reset();
    break;
  }
  return r;
}

std::optional<uint32_t> read_handshake_reply(int fd, Clock::time_point deadline, int cancel_fd) {
  std::string line;
  for (;;) {
    char c = 0;
    // One byte per recv: the guest's first bytes may follow "OK" in the same
    // segment, and they belong to the caller.
    const ssize_t n = ::recv(fd, &c, 1, 0);
    if (n == 1) {
      if (c == '\n') break;
      line += c;
      if (line.size() > kMaxReplyLine)
        throw ConnectError(ConnectError::Reason::kProtocol,
                           fmt::format("handshake reply too long: '{}...'", printable(line)));
      continue;
    }
    if (n == 0) return std::nullopt;
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return std::nullopt;
    if (errno != EAGAIN) throw_errno("reading the handshake reply");
    const Wait w = wait_fd(fd, POLLIN, deadline, cancel_fd);
    if (w == Wait::kCancelled) throw ConnectError(ConnectError::Reason::kCancelled, "cancelled");
    if (w == Wait::kTimeout) throw ConnectError(ConnectError::Reason::kTimeout, "timed out waiting for the handshake reply");
  }
  const auto port = parse_ok_line(line);
  if (!port)
    throw ConnectError(ConnectError::Reason::kProtocol,
                       fmt::format("unexpected handshake reply from the VMM: '{}'", printable(line)));
  return port;
}

UniqueFd vsock_connect(const VsockAddress& addr, const ConnectPolicy& policy) {
  const auto start = Clock::now();
  const auto deadline = start + policy.timeout;
  milliseconds backoff = kFirstBackoff;
  std::string why;  // the last informative reason, for the final message
  for (;;) {
    Attempt a = try_once(addr, deadline, policy.cancel_fd);
    if (a.fd) return std::move(a.fd);
    // An attempt cut short by the deadline says less than the one before it.
    if (!a.timed_out || why.empty()) why = a.why;
    if (a.fatal || (a.unreachable && !policy.retry_unreachable_socket))
      throw ConnectError(ConnectError::Reason::kUnreachable, a.why + (a.unreachable ? " (is the VM running?)" : ""));
    const auto now = Clock::now();
    if (now >= deadline) {
      const double secs = std::chrono::duration<double>(policy.timeout).count();
      throw ConnectError(ConnectError::Reason::kTimeout,
                         fmt::format("cannot reach guest port {} through {}: {} (gave up after {:g} s)", addr.port,
                                     addr.socket_path, why, secs));
    }
    const auto sleep_until = std::min(deadline, now + backoff);
    if (policy.cancel_fd >= 0) {
      // The backoff sleep doubles as the wait for cancellation.
      pollfd p{policy.cancel_fd, POLLIN, 0};
      int n = 0;
      do {
        n = ::poll(&p, 1, ms_until(sleep_until));
      } while (n < 0 && errno == EINTR);
      if (n > 0) throw ConnectError(ConnectError::Reason::kCancelled, "cancelled");
    } else {
      std::this_thread::sleep_until(sleep_until);
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace ksbox::cli
