#include "devices/fs/fuse_server.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <string>
#include <vector>

#include "devices/fs/fuse_server_ctx.h"

namespace ksbox::devices::fs {

const char* to_string(Malformed m) {
  switch (m) {
    case Malformed::kShortHeader: return "short header";
    case Malformed::kLengthMismatch: return "length mismatch";
    case Malformed::kNoReplySpace: return "no reply space";
    case Malformed::kTruncatedArgs: return "truncated arguments";
    case Malformed::kTrailingBytes: return "trailing bytes";
    case Malformed::kBadName: return "bad name";
    case Malformed::kUnknownNode: return "unknown nodeid";
    case Malformed::kNotInitialized: return "not initialized";
    case Malformed::kBadInit: return "bad init";
    case Malformed::kExtensions: return "request extensions";
    case Malformed::kBadCount: return "bad count";
    case Malformed::kReplyTooLarge: return "reply too large";
    case Malformed::kForgetExcess: return "forget beyond lookup count";
    case Malformed::kCount: break;
  }
  return "?";
}

const char* fuse_opcode_name(uint32_t op) {
  switch (op) {
    case FUSE_INIT: return "INIT";
    case FUSE_DESTROY: return "DESTROY";
    case FUSE_LOOKUP: return "LOOKUP";
    case FUSE_FORGET: return "FORGET";
    case FUSE_BATCH_FORGET: return "BATCH_FORGET";
    case FUSE_GETATTR: return "GETATTR";
    case FUSE_SETATTR: return "SETATTR";
    case FUSE_STATFS: return "STATFS";
    case FUSE_OPENDIR: return "OPENDIR";
    case FUSE_READDIR: return "READDIR";
    case FUSE_READDIRPLUS: return "READDIRPLUS";
    case FUSE_RELEASEDIR: return "RELEASEDIR";
    case FUSE_FSYNCDIR: return "FSYNCDIR";
    case FUSE_OPEN: return "OPEN";
    case FUSE_READ: return "READ";
    case FUSE_WRITE: return "WRITE";
    case FUSE_RELEASE: return "RELEASE";
    case FUSE_FLUSH: return "FLUSH";
    case FUSE_FSYNC: return "FSYNC";
    case FUSE_READLINK: return "READLINK";
    case FUSE_CREATE: return "CREATE";
    case FUSE_MKDIR: return "MKDIR";
    case FUSE_UNLINK: return "UNLINK";
    case FUSE_RMDIR: return "RMDIR";
    case FUSE_RENAME: return "RENAME";
    case FUSE_RENAME2: return "RENAME2";
    case FUSE_SYMLINK: return "SYMLINK";
    case FUSE_LINK: return "LINK";
    case FUSE_MKNOD: return "MKNOD";
    case FUSE_ACCESS: return "ACCESS";
    case FUSE_TMPFILE: return "TMPFILE";
    case FUSE_FALLOCATE: return "FALLOCATE";
    case FUSE_LSEEK: return "LSEEK";
    case FUSE_COPY_FILE_RANGE: return "COPY_FILE_RANGE";
    case FUSE_GETXATTR: return "GETXATTR";
    case FUSE_LISTXATTR: return "LISTXATTR";
    case FUSE_SETXATTR: return "SETXATTR";
    case FUSE_REMOVEXATTR: return "REMOVEXATTR";
    case FUSE_INTERRUPT: return "INTERRUPT";
    case FUSE_GETLK: return "GETLK";
    case FUSE_SETLK: return "SETLK";
    case FUSE_SETLKW: return "SETLKW";
    case FUSE_BMAP: return "BMAP";
    case FUSE_IOCTL: return "IOCTL";
    case FUSE_POLL: return "POLL";
    case FUSE_NOTIFY_REPLY: return "NOTIFY_REPLY";
    case FUSE_SETUPMAPPING: return "SETUPMAPPING";
    case FUSE_REMOVEMAPPING: return "REMOVEMAPPING";
    case FUSE_SYNCFS: return "SYNCFS";
    default: break;
  }
  return nullptr;
}

FuseStats& FuseStats::operator+=(const FuseStats& o) {
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].count += o.ops[i].count;
    ops[i].timed += o.ops[i].timed;
    ops[i].ns += o.ops[i].ns;
  }
  requests += o.requests;
  unsupported += o.unsupported;
  interrupts += o.interrupts;
  for (size_t i = 0; i < malformed.size(); ++i) malformed[i] += o.malformed[i];
  return *this;
}

namespace {
constexpr size_t kOutHdr = sizeof(fuse_out_header);

// Flags we implement, offered only when the guest offers them too.
// Not FUSE_POSIX_LOCKS or FUSE_FLOCK_LOCKS: without them the guest kernel
// keeps fcntl and flock locks to itself, which is exact for a single guest,
// and a blocking SETLKW cannot stall the one device thread. Not
// FUSE_SETXATTR_EXT: SETXATTR carries the 8-byte compat fuse_setxattr_in.
// FUSE_HANDLE_KILLPRIV_V2: the server clears setuid/setgid on the writes,
// truncations and O_TRUNC opens of guest users without CAP_FSETID (the
// request says so); without it the guest asks GETXATTR security.capability
// before every write(), a second round trip per write.
constexpr uint32_t kInitFlags = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
                                FUSE_READDIRPLUS_AUTO | FUSE_MAX_PAGES | FUSE_HANDLE_KILLPRIV_V2;

// FORGET, BATCH_FORGET and INTERRUPT are never answered.
bool has_reply(uint32_t opcode) {
  return opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET && opcode != FUSE_INTERRUPT;
}
}  // namespace

FuseServer::FuseServer(std::unique_ptr<Passthrough> fs) : fs_(std::move(fs)) {}

size_t FuseServer::handle(InSpans in, OutSpans out) {
  ++stats_.requests;
  const size_t have = total_size(in);
  RequestReader reader(in, have);
  fuse_in_header hdr;  // read into, not zeroed first: this runs for every request
  if (!reader.read(&hdr, sizeof hdr)) {
    ++stats_.malformed[static_cast<size_t>(Malformed::kShortHeader)];
    return 0;
  }
  Ctx c{hdr, reader, ReplyWriter(out), name_, name2_};
  if (hdr.len != have) {
    ++stats_.malformed[static_cast<size_t>(Malformed::kLengthMismatch)];
    return 0;
  }
  const bool no_reply = !has_reply(hdr.opcode);
  if (!no_reply && c.out.capacity() < kOutHdr) {
    ++stats_.malformed[static_cast<size_t>(Malformed::kNoReplySpace)];
    return 0;
  }
  if (hdr.total_extlen != 0) return no_reply ? fail(c, Malformed::kExtensions, 0) : fail(c, Malformed::kExtensions, -EINVAL);
  auto& op = stats_.ops[std::min<size_t>(hdr.opcode, FuseStats::kOpSlots - 1)];
  if (op.count++ % FuseStats::kTimeEvery != 0) return dispatch(c);
  const auto t0 = std::chrono::steady_clock::now();
  const size_t n = dispatch(c);
  ++op.timed;
  op.ns += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  return n;
}

size_t FuseServer::reply(Ctx& c, int error, const void* body, size_t body_len) {
  if (!has_reply(c.h.opcode)) return 0;
  if (error != 0) body_len = 0;
  if (body_len > c.out.capacity() - kOutHdr) {
    ++stats_.malformed[static_cast<size_t>(Malformed::kReplyTooLarge)];
    error = -ERANGE;
    body_len = 0;
  }
  fuse_out_header oh{};
  oh.len = static_cast<uint32_t>(kOutHdr + body_len);
  oh.error = error;
  oh.unique = c.h.unique;
  c.out.write_at(0, &oh, kOutHdr);
  if (body_len) c.out.write_at(kOutHdr, body, body_len);
  return kOutHdr + body_len;
}

size_t FuseServer::fail(Ctx& c, Malformed why, int error) {
  ++stats_.malformed[static_cast<size_t>(why)];
  return reply(c, error);
}

size_t FuseServer::do_init(Ctx& c) {
  if (initialized_) return fail(c, Malformed::kNotInitialized, -EPROTO);
  // Before 7.36 fuse_init_in is 16 bytes; from 7.36 it is the full struct.
  constexpr size_t kShortInit = 16;
  fuse_init_in ii{};
  if (!c.in.read(&ii, kShortInit)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  if (c.in.remaining() == sizeof ii - kShortInit) {
    c.in.read(reinterpret_cast<uint8_t*>(&ii) + kShortInit, sizeof ii - kShortInit);
  } else if (c.in.remaining() != 0) {
    return fail(c, Malformed::kTrailingBytes, -EINVAL);
  }
  if (ii.major != FUSE_KERNEL_VERSION || ii.minor < kMinMinor) return fail(c, Malformed::kBadInit, -EPROTO);
  fuse_init_out io{};
  io.major = FUSE_KERNEL_VERSION;
  io.minor = std::min<uint32_t>(ii.minor, FUSE_KERNEL_MINOR_VERSION);
  io.max_readahead = std::min(ii.max_readahead, kMaxReadahead);
  // The writeback cache only where the share's cache policy allows it.
  const PassthroughOptions& opts = fs_->options();
  // Listings without OPENDIR + RELEASEDIR: two round trips fewer per
  // directory read (see Passthrough::set_implicit_dirs).
  const bool implicit_dirs = opts.lists_without_opendir() && (ii.flags & FUSE_NO_OPENDIR_SUPPORT);
  // Files without OPEN + RELEASE (and FLUSH): see Passthrough::set_implicit_files.
  // Then no ATOMIC_O_TRUNC: with no OPEN to truncate, the guest's kernel
  // must send the truncation as a SETATTR.
  const bool implicit_files = opts.opens_without_open() && (ii.flags & FUSE_NO_OPEN_SUPPORT);
  const uint32_t offered = (kInitFlags & ~(implicit_files ? uint32_t{FUSE_ATOMIC_O_TRUNC} : 0u)) |
                           (opts.writeback ? FUSE_WRITEBACK_CACHE : 0);
  io.flags = ii.flags & offered;
  fs_->set_writeback((io.flags & FUSE_WRITEBACK_CACHE) != 0);
  fs_->set_implicit_dirs(implicit_dirs);
  fs_->set_implicit_files(implicit_files);
  io.max_background = 64;
  io.congestion_threshold = 48;
  io.max_write = kMaxWrite;
  io.time_gran = 1;
  if (io.flags & FUSE_MAX_PAGES) io.max_pages = static_cast<uint16_t>(kMaxWrite / 4096);
  initialized_ = true;
  minor_ = io.minor;
  return reply(c, 0, &io, sizeof io);
}

size_t FuseServer::do_batch_forget(Ctx& c) {
  fuse_batch_forget_in bf{};
  if (!c.arg(bf)) return fail(c, Malformed::kTruncatedArgs, 0);
  // Trust the count only as far as the payload that arrived.
  if (static_cast<uint64_t>(bf.count) * sizeof(fuse_forget_one) != c.in.remaining())
    return fail(c, Malformed::kBadCount, 0);
  for (uint32_t i = 0; i < bf.count; ++i) {
    fuse_forget_one f{};
    c.arg(f);
    if (!fs_->known(f.nodeid)) ++stats_.malformed[static_cast<size_t>(Malformed::kUnknownNode)];
    else if (fs_->forget(f.nodeid, f.nlookup)) ++stats_.malformed[static_cast<size_t>(Malformed::kForgetExcess)];
  }
  return 0;
}

size_t FuseServer::do_read(Ctx& c) {
  fuse_read_in ri{};
  if (auto bad = c.only_arg(ri)) return fail(c, *bad, -EINVAL);
  const size_t size = std::min<size_t>(ri.size, kMaxWrite);
  if (size > c.out.capacity() - kOutHdr) return fail(c, Malformed::kReplyTooLarge, -EINVAL);
  const auto dst = c.out.spans_at(kOutHdr, size);
  const ssize_t n = fs_->read(c.h.nodeid, ri.fh, ri.offset, {dst.data(), dst.size()});
  if (n < 0) return reply(c, static_cast<int>(n));
  fuse_out_header oh{};
  oh.len = static_cast<uint32_t>(kOutHdr + static_cast<size_t>(n));
  oh.unique = c.h.unique;
  c.out.write_at(0, &oh, kOutHdr);
  return oh.len;
}

size_t FuseServer::do_write(Ctx& c) {
  fuse_write_in wi{};
  if (!c.arg(wi)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  if (wi.size > kMaxWrite) return fail(c, Malformed::kBadCount, -EINVAL);
  if (c.in.remaining() < wi.size) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  if (c.in.remaining() > wi.size) return fail(c, Malformed::kTrailingBytes, -EINVAL);
  SpanList<const uint8_t> src;
  c.in.take_spans(wi.size, src);  // checked above: all of it is there
  const ssize_t n = fs_->write(c.h.nodeid, wi.fh, wi.offset, {src.data(), src.size()}, (wi.flags & O_APPEND) != 0);
  if (n < 0) return reply(c, static_cast<int>(n));
  if (wi.write_flags & FUSE_WRITE_KILL_SUIDGID) fs_->kill_suidgid(c.h.nodeid, wi.fh);
  fuse_write_out wo{};
  wo.size = static_cast<uint32_t>(n);
  return reply(c, 0, &wo, sizeof wo);
}

size_t FuseServer::do_readdir(Ctx& c, bool plus) {
  fuse_read_in ri{};
  if (auto bad = c.only_arg(ri)) return fail(c, *bad, -EINVAL);
  const size_t size = std::min({size_t{ri.size}, size_t{kMaxWrite}, c.out.capacity() - kOutHdr});
  dirents_.clear();  // kept across requests: no allocation per listing page
  if (int r = fs_->readdir(c.h.nodeid, ri.fh, ri.offset, size, plus, dirents_)) return reply(c, r);
  return reply(c, 0, dirents_.data(), dirents_.size());
}

size_t FuseServer::dispatch(Ctx& c) {
  const uint32_t op = c.h.opcode;
  if (op == FUSE_INIT) return do_init(c);
  if (!initialized_) return fail(c, Malformed::kNotInitialized, -EIO);

  auto entry_reply = [&](int r, const fuse_entry_out& e) { return r ? reply(c, r) : reply(c, 0, &e, sizeof e); };

  switch (op) {
    case FUSE_DESTROY:
      initialized_ = false;
      return reply(c, 0);
    case FUSE_BATCH_FORGET: return do_batch_forget(c);
    case FUSE_INTERRUPT: return do_interrupt(c);
    case FUSE_LOOKUP: case FUSE_FORGET: case FUSE_GETATTR: case FUSE_SETATTR: case FUSE_STATFS:
    case FUSE_OPENDIR: case FUSE_READDIR: case FUSE_READDIRPLUS: case FUSE_RELEASEDIR: case FUSE_FSYNCDIR:
    case FUSE_OPEN: case FUSE_READ: case FUSE_WRITE: case FUSE_RELEASE: case FUSE_FLUSH: case FUSE_FSYNC:
    case FUSE_READLINK: case FUSE_CREATE: case FUSE_MKDIR: case FUSE_UNLINK: case FUSE_RMDIR:
    case FUSE_RENAME: case FUSE_RENAME2: case FUSE_SYMLINK: case FUSE_LINK:
    case FUSE_MKNOD: case FUSE_ACCESS: case FUSE_TMPFILE: case FUSE_FALLOCATE: case FUSE_LSEEK:
    case FUSE_COPY_FILE_RANGE: case FUSE_GETXATTR: case FUSE_LISTXATTR: case FUSE_SETXATTR:
    case FUSE_REMOVEXATTR:
      break;
    default:
      ++stats_.unsupported;
      return reply(c, -ENOSYS);
  }
  if (!fs_->known(c.h.nodeid)) return fail(c, Malformed::kUnknownNode, -ESTALE);

  switch (op) {
    case FUSE_LOOKUP: {
      if (!c.component(c.name) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
      fuse_entry_out e;  // lookup() sets all of it on success
      return entry_reply(fs_->lookup(c.h.nodeid, Ctx::sv(c.name), e), e);
    }
    case FUSE_FORGET: {
      fuse_forget_in fi{};
      if (!c.arg(fi) || !c.done()) return fail(c, Malformed::kTruncatedArgs, 0);
      if (fs_->forget(c.h.nodeid, fi.nlookup)) ++stats_.malformed[static_cast<size_t>(Malformed::kForgetExcess)];
      return 0;
    }
    case FUSE_GETATTR: {
      fuse_getattr_in gi{};
      if (auto bad = c.only_arg(gi)) return fail(c, *bad, -EINVAL);
      fuse_attr_out ao;  // getattr() sets all of it on success
      const auto fh = (gi.getattr_flags & FUSE_GETATTR_FH) ? std::optional<uint64_t>(gi.fh) : std::nullopt;
      const int r = fs_->getattr(c.h.nodeid, ao, fh);
      return r ? reply(c, r) : reply(c, 0, &ao, sizeof ao);
    }
    case FUSE_SETATTR: {
      fuse_setattr_in si{};
      if (auto bad = c.only_arg(si)) return fail(c, *bad, -EINVAL);
      fuse_attr_out ao{};
      const int r = fs_->setattr(c.h.nodeid, si, ao);
      return r ? reply(c, r) : reply(c, 0, &ao, sizeof ao);
    }
    case FUSE_STATFS: {
      if (!c.done()) return fail(c, Malformed::kTrailingBytes, -EINVAL);
      fuse_statfs_out so{};
      const int r = fs_->statfs(c.h.nodeid, so.st);
      return r ? reply(c, r) : reply(c, 0, &so, sizeof so);
    }
    case FUSE_OPENDIR:
    case FUSE_OPEN: {
      fuse_open_in oi{};
      if (auto bad = c.only_arg(oi)) return fail(c, *bad, -EINVAL);
      fuse_open_out oo{};
      const int r = op == FUSE_OPEN ? fs_->open(c.h.nodeid, oi.flags, oo.fh) : fs_->opendir(c.h.nodeid, oo.fh);
      if (r == 0 && op == FUSE_OPEN && (oi.flags & O_TRUNC) && (oi.open_flags & FUSE_OPEN_KILL_SUIDGID))
        fs_->kill_suidgid(c.h.nodeid, oo.fh);
      oo.open_flags = fs_->open_reply_flags(c.h.nodeid, op == FUSE_OPENDIR);
      return r ? reply(c, r) : reply(c, 0, &oo, sizeof oo);
    }
    case FUSE_READDIR: return do_readdir(c, false);
    case FUSE_READDIRPLUS: return do_readdir(c, true);
    case FUSE_RELEASEDIR:
    case FUSE_RELEASE: {
      fuse_release_in ri{};
      if (auto bad = c.only_arg(ri)) return fail(c, *bad, -EINVAL);
      return reply(c, fs_->release(ri.fh, op == FUSE_RELEASEDIR));
    }
    case FUSE_FLUSH: {
      fuse_flush_in fi{};
      if (auto bad = c.only_arg(fi)) return fail(c, *bad, -EINVAL);
      return reply(c, fs_->flush(fi.fh));
    }
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR: {
      fuse_fsync_in fi{};
      if (auto bad = c.only_arg(fi)) return fail(c, *bad, -EINVAL);
      return reply(c, fs_->fsync(c.h.nodeid, fi.fh, fi.fsync_flags & 1, op == FUSE_FSYNCDIR));
    }
    case FUSE_READ: return do_read(c);
    case FUSE_WRITE: return do_write(c);
    case FUSE_READLINK: {
      if (!c.done()) return fail(c, Malformed::kTrailingBytes, -EINVAL);
      std::string target;
      const int r = fs_->readlink(c.h.nodeid, target);
      return r ? reply(c, r) : reply(c, 0, target.data(), target.size());
    }
    case FUSE_CREATE: {
      fuse_create_in ci{};
      if (!c.arg(ci)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
      if (!c.component(c.name) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
      CreateOut body{};
      const int r = fs_->create(c.h.nodeid, Ctx::sv(c.name), ci.flags, ci.mode, body.e, body.o.fh);
      // An existing file opened with O_TRUNC (a new one has no setuid bits).
      if (r == 0 && (ci.flags & O_TRUNC) && (ci.open_flags & FUSE_OPEN_KILL_SUIDGID))
        fs_->kill_suidgid(body.e.nodeid, body.o.fh);
      body.o.open_flags = fs_->open_reply_flags(body.e.nodeid, false);
      return r ? reply(c, r) : reply(c, 0, &body, sizeof body);
    }
    case FUSE_MKDIR: {
      fuse_mkdir_in mi{};
      if (!c.arg(mi)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
      if (!c.component(c.name) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
      fuse_entry_out e{};
      return entry_reply(fs_->mkdir(c.h.nodeid, Ctx::sv(c.name), mi.mode, e), e);
    }
    case FUSE_UNLINK:
    case FUSE_RMDIR: {
      if (!c.component(c.name) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
      const auto n = Ctx::sv(c.name);
      return reply(c, op == FUSE_UNLINK ? fs_->unlink(c.h.nodeid, n) : fs_->rmdir(c.h.nodeid, n));
    }
    case FUSE_RENAME:
    case FUSE_RENAME2: {
      uint64_t newdir = 0;
      uint32_t flags = 0;
      if (op == FUSE_RENAME) {
        fuse_rename_in ri{};
        if (!c.arg(ri)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
        newdir = ri.newdir;
      } else {
        fuse_rename2_in ri{};
        if (!c.arg(ri)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
        newdir = ri.newdir;
        flags = ri.flags;
      }
      if (!c.component(c.name) || !c.component(c.name2) || !c.done())
        return fail(c, Malformed::kBadName, -EINVAL);
      if (!fs_->known(newdir)) return fail(c, Malformed::kUnknownNode, -ESTALE);
      return reply(c, fs_->rename(c.h.nodeid, Ctx::sv(c.name), newdir, Ctx::sv(c.name2), flags));
    }
    case FUSE_SYMLINK: {
      // name, then the target: any bytes but NUL, shorter than PATH_MAX.
      if (!c.component(c.name) || !c.in.read_cstring(PATH_MAX - 1, c.name2) || c.name2.empty() || !c.done())
        return fail(c, Malformed::kBadName, -EINVAL);
      fuse_entry_out e{};
      return entry_reply(fs_->symlink(c.h.nodeid, Ctx::sv(c.name), Ctx::sv(c.name2), e), e);
    }
    case FUSE_LINK: {
      fuse_link_in li{};
      if (!c.arg(li)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
      if (!c.component(c.name) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
      if (!fs_->known(li.oldnodeid)) return fail(c, Malformed::kUnknownNode, -ESTALE);
      fuse_entry_out e{};
      return entry_reply(fs_->link(li.oldnodeid, c.h.nodeid, Ctx::sv(c.name), e), e);
    }
    default: break;
  }
  return dispatch_more(c);
}

}  // namespace ksbox::devices::fs
