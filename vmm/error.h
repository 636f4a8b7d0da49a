// Errors a user can act on. Setup failures throw; guest-caused faults never do.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ksbox {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws Error("<what>: <strerror(errno)>"), capturing errno first.
[[noreturn]] inline void throw_errno(const std::string& what) {
  const int err = errno;
  throw Error(what + ": " + std::strerror(err));
}

}  // namespace ksbox
