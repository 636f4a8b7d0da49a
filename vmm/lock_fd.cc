#include "vmm/lock_fd.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <string>

#include "vmm/error.h"

namespace ksbox {

void hold_lock(int fd) {
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) throw_errno("--lock-fd " + std::to_string(fd));
  // A no-op when the caller's lock is on this same open file description.
  if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) throw Error("the sandbox is locked by another process (is its VMM running?)");
    throw_errno("--lock-fd " + std::to_string(fd) + ": flock");
  }
}

}  // namespace ksbox
