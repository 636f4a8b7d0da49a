#include "tests/e2e/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ksbox::test {

nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  socket_path.copy(a.sun_path, sizeof a.sun_path - 1);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string line = request.dump() + "\n";
    if (::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return nlohmann::json::parse(reply, nullptr, false);
}

}  // namespace ksbox::test
