// The sandbox lock handed down by the ksbox CLI (--lock-fd).
#pragma once

namespace ksbox {

// Takes over `fd`, an open file whose flock() the caller holds (or that is
// unlocked): makes sure this process holds an exclusive lock on it and keeps
// it close-on-exec, so that the lock lives exactly as long as the VMM.
// Throws Error when the fd is not open or another process holds the lock.
void hold_lock(int fd);

}  // namespace ksbox
