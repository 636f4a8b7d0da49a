#include "vmm/fd_limit.h"

#include <sys/resource.h>

#include <fstream>

namespace ksbox {
namespace {

uint64_t as_u64(rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); }

}  // namespace

uint64_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) < 0) return 0;
  if (rl.rlim_cur == rl.rlim_max) return as_u64(rl.rlim_cur);
  rlimit want = rl;
  want.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &want) == 0) return as_u64(want.rlim_cur);
  // An unlimited hard limit cannot be the soft one: the kernel caps at nr_open.
  uint64_t nr_open = 0;
  if (std::ifstream("/proc/sys/fs/nr_open") >> nr_open && nr_open > rl.rlim_cur) {
    want.rlim_cur = static_cast<rlim_t>(nr_open);
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) return nr_open;
  }
  return as_u64(rl.rlim_cur);
}

}  // namespace ksbox
