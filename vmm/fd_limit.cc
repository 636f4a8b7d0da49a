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
  // With CAP_SYS_RESOURCE the hard limit itself can go up to nr_open: a
  // share of a large tree holds one O_PATH fd per inode the guest caches.
  uint64_t nr_open = 0;
  const bool have_nr_open = static_cast<bool>(std::ifstream("/proc/sys/fs/nr_open") >> nr_open);
  if (have_nr_open && rl.rlim_max != RLIM_INFINITY && nr_open > as_u64(rl.rlim_max)) {
    const rlimit all{static_cast<rlim_t>(nr_open), static_cast<rlim_t>(nr_open)};
    if (::setrlimit(RLIMIT_NOFILE, &all) == 0) return nr_open;
  }
  if (rl.rlim_cur == rl.rlim_max) return as_u64(rl.rlim_cur);
  rlimit want = rl;
  want.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &want) == 0) return as_u64(want.rlim_cur);
  // An unlimited hard limit cannot be the soft one: the kernel caps at nr_open.
  if (have_nr_open && nr_open > rl.rlim_cur) {
    want.rlim_cur = static_cast<rlim_t>(nr_open);
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) return nr_open;
  }
  return as_u64(rl.rlim_cur);
}

}  // namespace ksbox
