// The host side of the vsock device: the Unix listener host clients connect
// to, the "CONNECT <port>\n" line they send first, and the Unix sockets the
// device connects to for guest-initiated streams ("<path>_<port>").
// (The Firecracker convention, so existing tools work unchanged.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vmm/unique_fd.h"

namespace ksbox::devices::vsock {

// A SOCK_STREAM listener bound at `path`, non-blocking and close-on-exec.
// The socket file is mode 0600 whatever the umask: whoever can connect can
// run commands in the guest.
// A stale socket file nobody listens on (connect gives ECONNREFUSED) is
// replaced; a live listener ("in use"), a non-socket file or a path too long
// for sockaddr_un throw Error. The destructor unlinks the path if it is
// still the socket we bound.
class UnixListener {
 public:
  // `what` names the socket in error messages.
  explicit UnixListener(std::string path, std::string_view what = "vsock socket");
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // The next pending client (non-blocking, close-on-exec), or an invalid fd
  // with `error` set: EAGAIN when there is none, else why accept failed
  // (EMFILE, ENFILE, ENOBUFS, ENOMEM: the client stays queued).
  UniqueFd accept(int& error);

 private:
  std::string path_;
  UniqueFd fd_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// Non-blocking connect to the Unix socket at `path`. An invalid fd on
// failure (no such socket, nobody listening, backlog full, path too long).
UniqueFd connect_unix(const std::string& path);

// "CONNECT <port>\n" from a host client, read without consuming anything
// after the '\n': the client may send stream data right behind it.
inline constexpr size_t kMaxConnectLine = 32;  // bytes, '\n' included
enum class LineStatus : uint8_t {
  kIncomplete,  // no '\n' yet: wait for more
  kDone,        // `line` holds the line without its '\n'
  kBad,         // too long, or the client closed or failed before the '\n'
};
LineStatus read_connect_line(int fd, std::string& line);
// The port of a complete line ("CONNECT 1024", optionally with a trailing
// '\r'): decimal, below 2^32. nullopt for anything else.
std::optional<uint32_t> parse_connect_line(std::string_view line);

}  // namespace ksbox::devices::vsock
