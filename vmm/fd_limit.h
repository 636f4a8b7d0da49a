// RLIMIT_NOFILE for a process that serves many sockets: the soft limit
// (often 1024) is raised to the hard limit at start-up, so a busy vsock
// device does not run out of descriptors long before the system would.
#pragma once

#include <cstdint>

namespace ksbox {

// Raises RLIMIT_NOFILE's soft limit to its hard limit (to fs.nr_open when
// the hard limit is unlimited), and both to fs.nr_open where the process
// may (CAP_SYS_RESOURCE). Never fails: returns the soft limit in effect
// afterwards (UINT64_MAX for unlimited).
uint64_t raise_fd_limit();

}  // namespace ksbox
