#include "listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

// After sys/socket.h: it needs sa_family_t.
#include <linux/vm_sockets.h>

#include "vmm/error.h"

namespace ksbox::agent {

std::string ListenAddress::describe() const {
  return kind == Kind::kVsock ? "vsock port " + std::to_string(port) : "unix:" + path;
}

std::optional<ListenAddress> parse_listen_address(std::string_view spec) {
  ListenAddress a;
  if (spec.starts_with("vsock:")) {
    const std::string_view num = spec.substr(6);
    const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), a.port);
    if (num.empty() || ec != std::errc() || p != num.data() + num.size()) return std::nullopt;
    if (a.port == VMADDR_PORT_ANY) return std::nullopt;
    a.kind = ListenAddress::Kind::kVsock;
    return a;
  }
  if (spec.starts_with("unix:")) {
    a.kind = ListenAddress::Kind::kUnix;
    a.path = spec.substr(5);
    if (a.path.empty() || a.path.size() >= sizeof(sockaddr_un::sun_path)) return std::nullopt;
    return a;
  }
  return std::nullopt;
}

UniqueFd listen_on(const ListenAddress& addr) {
  const int domain = addr.kind == ListenAddress::Kind::kVsock ? AF_VSOCK : AF_UNIX;
  UniqueFd fd(::socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("socket(" + addr.describe() + ")");
  int rc;
  if (addr.kind == ListenAddress::Kind::kVsock) {
    sockaddr_vm sa{};
    sa.svm_family = AF_VSOCK;
    sa.svm_cid = VMADDR_CID_ANY;
    sa.svm_port = addr.port;
    rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  } else {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, addr.path.data(), addr.path.size());
    socklen_t len = sizeof sa;
    if (addr.path.front() == '@') {
      sa.sun_path[0] = '\0';  // abstract: the name is exactly the given bytes
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + addr.path.size());
    } else {
      struct stat st {};
      if (::lstat(addr.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(addr.path.c_str());
    }
    rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), len);
  }
  if (rc < 0) throw_errno("bind(" + addr.describe() + ")");
  if (::listen(fd.get(), 128) < 0) throw_errno("listen(" + addr.describe() + ")");
  return fd;
}

}  // namespace ksbox::agent
