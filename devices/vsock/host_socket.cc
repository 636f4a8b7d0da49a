#include "devices/vsock/host_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::devices::vsock {
namespace {

std::optional<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return std::nullopt;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

UniqueFd stream_socket() {
  return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

int connect_to(int fd, const sockaddr_un& addr) {
  for (;;) {
    const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    if (r == 0 || errno != EINTR) return r;
  }
}

// Whether a process is accepting connections at `addr`.
bool someone_listens(const sockaddr_un& addr, const std::string& path, std::string_view what) {
  UniqueFd probe = stream_socket();
  if (!probe) throw_errno("vsock: socket");
  if (connect_to(probe.get(), addr) == 0) return true;
  // EAGAIN: a listener whose backlog is full is alive all the same.
  if (errno == EAGAIN) return true;
  if (errno == ECONNREFUSED || errno == ENOENT) return false;
  throw Error(fmt::format("{} '{}' exists and cannot be probed: {}", what, path, std::strerror(errno)));
}

}  // namespace

UnixListener::UnixListener(std::string path, std::string_view what) : path_(std::move(path)) {
  const auto addr = unix_address(path_);
  if (!addr)
    throw Error(fmt::format("{} path '{}' must be non-empty and shorter than {} bytes", what, path_,
                            sizeof(sockaddr_un::sun_path)));
  fd_ = stream_socket();
  if (!fd_) throw_errno(std::string(what) + ": socket");
  const auto* sa = reinterpret_cast<const sockaddr*>(&*addr);
  if (::bind(fd_.get(), sa, sizeof *addr) < 0) {
    if (errno != EADDRINUSE)
      throw Error(fmt::format("cannot create {} '{}': {}", what, path_, std::strerror(errno)));
    struct stat st{};
    if (::lstat(path_.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
      throw Error(fmt::format("{} path '{}' exists and is not a socket", what, path_));
    if (someone_listens(*addr, path_, what))
      throw Error(fmt::format("{} '{}' is in use by another process", what, path_));
    // A leftover of a process that died: take its place.
    if (::unlink(path_.c_str()) < 0 && errno != ENOENT)
      throw Error(fmt::format("cannot remove stale {} '{}': {}", what, path_, std::strerror(errno)));
    if (::bind(fd_.get(), sa, sizeof *addr) < 0)
      throw Error(fmt::format("cannot create {} '{}': {}", what, path_, std::strerror(errno)));
  }
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  // Owner only. Nobody can connect before listen() below, so restricting
  // the mode now leaves no window (and touches no process-wide umask).
  if (::chmod(path_.c_str(), S_IRUSR | S_IWUSR) < 0) {
    const int err = errno;
    ::unlink(path_.c_str());
    throw Error(fmt::format("cannot restrict {} '{}' to its owner: {}", what, path_, std::strerror(err)));
  }
  if (::listen(fd_.get(), SOMAXCONN) < 0) {
    const int err = errno;
    ::unlink(path_.c_str());
    throw Error(fmt::format("cannot listen on {} '{}': {}", what, path_, std::strerror(err)));
  }
}

UnixListener::~UnixListener() {
  // Only our own socket: another process may have replaced the path since.
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

UniqueFd UnixListener::accept(int& error) {
  for (;;) {
    const int fd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      error = 0;
      return UniqueFd(fd);
    }
    // ECONNABORTED and friends: that client is gone, try the next one.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    error = errno == EWOULDBLOCK ? EAGAIN : errno;
    return {};
  }
}

UniqueFd connect_unix(const std::string& path) {
  const auto addr = unix_address(path);
  if (!addr) return {};
  UniqueFd fd = stream_socket();
  if (!fd) return {};
  // A Unix stream connect completes at once or fails (EAGAIN: backlog full).
  if (connect_to(fd.get(), *addr) < 0) return {};
  return fd;
}

LineStatus read_connect_line(int fd, std::string& line) {
  char buf[kMaxConnectLine];
  const size_t room = kMaxConnectLine - line.size();
  if (room == 0) return LineStatus::kBad;
  ssize_t n;
  do {
    n = ::recv(fd, buf, room, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? LineStatus::kIncomplete : LineStatus::kBad;
  if (n == 0) return LineStatus::kBad;  // EOF before the line ended
  const auto peeked = std::string_view(buf, static_cast<size_t>(n));
  const size_t nl = peeked.find('\n');
  // Consume exactly up to and including the '\n'; bytes before it are ours
  // anyway, so a partial line is consumed too (level-triggered epoll would
  // otherwise report the same bytes forever).
  const size_t take = nl == std::string_view::npos ? peeked.size() : nl + 1;
  ssize_t got;
  do {
    got = ::recv(fd, buf, take, 0);
  } while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(take)) return LineStatus::kBad;
  line.append(buf, nl == std::string_view::npos ? take : nl);
  if (nl != std::string_view::npos) return LineStatus::kDone;
  return line.size() >= kMaxConnectLine ? LineStatus::kBad : LineStatus::kIncomplete;
}

std::optional<uint32_t> parse_connect_line(std::string_view line) {
  constexpr std::string_view kPrefix = "CONNECT ";
  if (!line.starts_with(kPrefix)) return std::nullopt;
  line.remove_prefix(kPrefix.size());
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.empty() || line.size() > 10) return std::nullopt;
  uint64_t port = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), port);
  if (ec != std::errc() || end != line.data() + line.size() || port > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(port);
}

}  // namespace ksbox::devices::vsock
