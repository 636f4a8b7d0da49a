// Reading the kernel command line that ksbox-vmm composed (its words:
// protocol/cmdline_words.h).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "protocol/cmdline_words.h"
#include "vmm/unique_fd.h"

namespace ksbox::agent {

using protocol::last_param;
using protocol::parse_share_tags;

// /proc/cmdline ("" when unreadable).
inline std::string read_kernel_cmdline() {
  UniqueFd fd(::open("/proc/cmdline", O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string out(4096, '\0');
  const ssize_t n = ::read(fd.get(), out.data(), out.size());
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace ksbox::agent
