// Asynchronous host file I/O behind one interface, for devices that keep
// several guest requests in flight (virtio-blk). Two engines: io_uring
// (requests run in the kernel while the device thread goes on; completions
// arrive on an eventfd the thread watches) and a synchronous one (each op
// runs inside submit(); tests, fuzzers and hosts without io_uring).
//
// Every engine reports the same results: a read or write completes with all
// its bytes or with -errno (a short transfer is continued; no progress at
// all is -EIO), so the caller never sees a partial success. Not thread-safe:
// one thread (the device's, under its lock) uses an engine.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devices/io/io_engine_kind.h"

namespace ksbox::devices::io {

struct IoOp {
  enum class Kind : uint8_t {
    kRead,       // preadv of `iov` at `offset`
    kWrite,      // pwritev of `iov` at `offset`; RWF_DSYNC when `dsync`
    kDataSync,   // fdatasync
    kFallocate,  // fallocate(mode, offset, length)
  };
  Kind kind = Kind::kRead;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;  // kFallocate only
  int mode = 0;         // kFallocate only
  bool dsync = false;   // kWrite only
  // Copied by submit(); the memory it points at must stay valid until the
  // op's completion has been reaped.
  std::span<const iovec> iov;
  uint64_t tag = 0;  // returned in the completion
};

struct IoCompletion {
  uint64_t tag = 0;
  int64_t result = 0;  // kRead/kWrite: bytes (all of them); others 0; or -errno
};

class AsyncIo {
 public:
  virtual ~AsyncIo() = default;

  // Ops in flight at most, and now (submitted, completion not yet reaped).
  virtual size_t capacity() const = 0;
  virtual size_t in_flight() const = 0;
  // Queues `op`. False (nothing queued) when capacity() are in flight.
  virtual bool submit(const IoOp& op) = 0;
  // Hands the queued ops to the kernel; call after a batch of submit().
  virtual void flush() = 0;
  // Appends the finished ops to `out`, without blocking.
  virtual void reap(std::vector<IoCompletion>& out) = 0;
  // Blocks until nothing is in flight, appending every completion.
  virtual void drain(std::vector<IoCompletion>& out) = 0;
  // Readable when completions may be waiting; -1 when ops complete inside
  // submit() (reap right after). Call ack_event() before reap().
  virtual int event_fd() const = 0;
  virtual void ack_event() {}
  virtual std::string_view name() const = 0;
};

// Runs one op to completion with blocking system calls (the sync engine's
// whole job, and the io_uring engine's fallback).
int64_t run_blocking(const IoOp& op);

class SyncAsyncIo final : public AsyncIo {
 public:
  explicit SyncAsyncIo(size_t capacity) : capacity_(capacity) {}
  size_t capacity() const override { return capacity_; }
  size_t in_flight() const override { return done_.size(); }
  bool submit(const IoOp& op) override;
  void flush() override {}
  void reap(std::vector<IoCompletion>& out) override;
  void drain(std::vector<IoCompletion>& out) override { reap(out); }
  int event_fd() const override { return -1; }
  std::string_view name() const override { return "sync"; }

 private:
  size_t capacity_;
  std::vector<IoCompletion> done_;
};

// kIoUring throws ksbox::Error (why, and what to do) if io_uring cannot be
// used; kAuto falls back to SyncAsyncIo then and puts the reason in
// `*why_fallback` (cleared otherwise). `purpose` names the user in errors.
std::unique_ptr<AsyncIo> make_async_io(IoEngineKind kind, unsigned capacity, std::string_view purpose,
                                       std::string* why_fallback = nullptr);

// `iov` without its first `skip` bytes (for continuing a short transfer).
std::vector<iovec> iov_tail(std::span<const iovec> iov, uint64_t skip);
uint64_t iov_bytes(std::span<const iovec> iov);

}  // namespace ksbox::devices::io
