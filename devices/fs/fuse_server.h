// The FUSE protocol server: one request in (scattered readable spans, as a
// virtqueue chain delivers them), one reply out (scattered writable spans).
// Transport-agnostic: the virtio-fs device hands it chains; tests hand it
// buffers.
//
// Every length in a request is checked against what arrived. A request too
// broken to answer (no complete header, no room for a reply header) is
// refused: handle() returns 0 and counts why. A request with a header but
// bad arguments is answered with an error and counted. Unimplemented opcodes
// answer -ENOSYS. Not thread-safe.
//
// Ops: fuse_server.cc serves the session, lookup, attributes, directories,
// file I/O and names; fuse_server_ops.cc the rest (xattrs, MKNOD, ACCESS,
// TMPFILE, FALLOCATE, LSEEK, COPY_FILE_RANGE, INTERRUPT). Locks are not
// served (see kInitFlags).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "devices/fs/fuse_wire.h"
#include "devices/fs/passthrough.h"

namespace ksbox::devices::fs {

enum class Malformed : uint8_t {
  kShortHeader,     // fewer bytes than fuse_in_header: refused
  kLengthMismatch,  // in.len differs from the bytes that arrived: refused
  kNoReplySpace,    // writable space smaller than fuse_out_header: refused
  kTruncatedArgs,   // fixed arguments shorter than their struct: -EINVAL
  kTrailingBytes,   // more argument bytes than the opcode takes: -EINVAL
  kBadName,         // unterminated, empty, '/', ".", "..", too long: -EINVAL
  kUnknownNode,     // nodeid not in the table: -ESTALE
  kNotInitialized,  // a request before INIT, or a second INIT: -EIO / -EPROTO
  kBadInit,         // major != 7 or too old a minor: -EPROTO
  kExtensions,      // request extensions (never negotiated): -EINVAL
  kBadCount,        // BATCH_FORGET count beyond the payload: ignored
  kReplyTooLarge,   // the reply does not fit the writable space: -ERANGE
  kForgetExcess,    // FORGET beyond the lookup count (clamped)
  kCount,
};
const char* to_string(Malformed m);
// "LOOKUP" for FUSE_LOOKUP; nullptr for an opcode this header does not know.
const char* fuse_opcode_name(uint32_t opcode);

struct FuseStats {
  // Per opcode (index = FUSE opcode; kOpSlots-1 gathers any larger one):
  // requests served and the host time spent serving them, measured on
  // every kTimeEvery-th request (the first included): two clock reads cost
  // about a third of what the server adds to a GETATTR, and the mean of
  // the sample serves as well.
  static constexpr size_t kOpSlots = 64;
  static constexpr uint64_t kTimeEvery = 32;
  struct Op {
    uint64_t count = 0;
    uint64_t timed = 0;  // requests measured
    uint64_t ns = 0;     // their host time
    // The host time of all `count` requests, estimated from the timed ones.
    uint64_t est_ns() const {
      return timed ? static_cast<uint64_t>(static_cast<double>(ns) * static_cast<double>(count) / static_cast<double>(timed)) : 0;
    }
  };
  std::array<Op, kOpSlots> ops{};
  uint64_t requests = 0;
  uint64_t unsupported = 0;  // answered -ENOSYS
  uint64_t interrupts = 0;   // INTERRUPT: nothing to cancel, never answered
  std::array<uint64_t, static_cast<size_t>(Malformed::kCount)> malformed{};
  uint64_t count(Malformed m) const { return malformed[static_cast<size_t>(m)]; }
  FuseStats& operator+=(const FuseStats& o);
};

class FuseServer {
 public:
  static constexpr uint32_t kMinMinor = 31;        // virtio-fs appeared with 7.31
  static constexpr uint32_t kMaxWrite = 1u << 20;  // also the read and readdir limit
  static constexpr uint32_t kMaxReadahead = 1u << 20;

  explicit FuseServer(std::unique_ptr<Passthrough> fs);

  // Serves one request; the number of reply bytes written to `out`, 0 when
  // there is no reply (FORGET, BATCH_FORGET, or a refused request).
  size_t handle(InSpans in, OutSpans out);

  const FuseStats& stats() const { return stats_; }
  bool initialized() const { return initialized_; }
  uint32_t negotiated_minor() const { return minor_; }
  Passthrough& fs() { return *fs_; }

 private:
  struct Ctx;
  size_t dispatch(Ctx& c);
  size_t reply(Ctx& c, int error, const void* body = nullptr, size_t body_len = 0);
  size_t fail(Ctx& c, Malformed why, int error);
  size_t do_init(Ctx& c);
  size_t do_read(Ctx& c);
  size_t do_write(Ctx& c);
  size_t do_readdir(Ctx& c, bool plus);
  size_t do_batch_forget(Ctx& c);
  // fuse_server_ops.cc
  size_t dispatch_more(Ctx& c);
  size_t do_interrupt(Ctx& c);
  size_t do_tmpfile(Ctx& c);
  size_t do_mknod(Ctx& c);
  size_t do_getxattr(Ctx& c, bool list);
  size_t do_setxattr(Ctx& c);
  size_t do_copy_file_range(Ctx& c);
  bool xattr_name(Ctx& c);

  std::unique_ptr<Passthrough> fs_;
  FuseStats stats_;
  // Buffers kept across requests, so that none allocates for them: the
  // names of the request being served, a READDIR(PLUS) reply being built.
  std::vector<char> name_, name2_;
  std::vector<uint8_t> dirents_;
  bool initialized_ = false;
  uint32_t minor_ = 0;
};

}  // namespace ksbox::devices::fs
