// An io_uring ring (liburing) that either works or explains why not: the
// constructor makes the ring and proves with a NOP round trip that the kernel
// lets this process use it (seccomp may allow io_uring_setup yet refuse
// io_uring_enter). Shared by the virtio-fs and virtio-blk engines.
#pragma once

#include <liburing.h>

#include <string_view>

namespace ksbox::devices::io {

class Uring {
 public:
  // `purpose` names the user in errors ("virtio-fs I/O"). Throws ksbox::Error
  // saying why and what to do (no io_uring, kernel.io_uring_disabled,
  // seccomp, RLIMIT_MEMLOCK).
  Uring(unsigned entries, std::string_view purpose);
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  io_uring* get() { return &ring_; }

  // Hands every prepared SQE to the kernel and waits for `wait_nr`
  // completions, retrying the transient -EINTR/-EAGAIN/-EBUSY a bounded number
  // of times. 0 once the kernel took them all, or -errno (SQEs may remain).
  int submit(unsigned wait_nr);

 private:
  io_uring ring_{};
};

// -EINTR, -EAGAIN, -EBUSY: worth another attempt.
inline bool transient_uring_error(int err) { return err == -EINTR || err == -EAGAIN || err == -EBUSY; }

}  // namespace ksbox::devices::io
