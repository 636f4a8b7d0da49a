// FuseServer: the ops beyond the core set (dispatched from fuse_server.cc
// once the nodeid is known). Argument checks as there: every length against
// what arrived, malformed requests counted.
#include <linux/limits.h>

#include <algorithm>
#include <cerrno>

#include "devices/fs/fuse_server.h"
#include "devices/fs/fuse_server_ctx.h"

namespace ksbox::devices::fs {

size_t FuseServer::do_interrupt(Ctx& c) {
  // Every request is answered before the next is read, so there is never
  // one to cancel (and 6.1's virtio-fs driver does not send INTERRUPT).
  fuse_interrupt_in ii{};
  if (auto bad = c.only_arg(ii)) return fail(c, *bad, 0);
  ++stats_.interrupts;
  return 0;
}

size_t FuseServer::do_tmpfile(Ctx& c) {
  fuse_create_in ci{};
  if (!c.arg(ci)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  // The kernel sends the placeholder dentry name ("/"); it names nothing.
  if (!c.in.read_cstring(NAME_MAX, c.name) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
  CreateOut body{};
  const int r = fs_->tmpfile(c.h.nodeid, ci.flags, ci.mode, body.e, body.o.fh);
  body.o.open_flags = fs_->open_reply_flags(body.e.nodeid, false);
  return r ? reply(c, r) : reply(c, 0, &body, sizeof body);
}

size_t FuseServer::do_mknod(Ctx& c) {
  fuse_mknod_in mi{};
  if (!c.arg(mi)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  if (!c.component(c.name) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
  fuse_entry_out e{};
  const int r = fs_->mknod(c.h.nodeid, Ctx::sv(c.name), mi.mode, e);
  return r ? reply(c, r) : reply(c, 0, &e, sizeof e);
}

bool FuseServer::xattr_name(Ctx& c) { return c.in.read_cstring(XATTR_NAME_MAX, c.name) && !c.name.empty(); }

size_t FuseServer::do_getxattr(Ctx& c, bool list) {
  fuse_getxattr_in gi{};
  if (!c.arg(gi)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  if (!list && !xattr_name(c)) return fail(c, Malformed::kBadName, -EINVAL);
  if (!c.done()) return fail(c, Malformed::kTrailingBytes, -EINVAL);
  std::vector<uint8_t> body;
  const ssize_t n = list ? fs_->listxattr(c.h.nodeid, gi.size, body)
                         : fs_->getxattr(c.h.nodeid, Ctx::sv(c.name), gi.size, body);
  if (n < 0) return reply(c, static_cast<int>(n));
  if (gi.size == 0) {  // a probe: only the size the answer would take
    fuse_getxattr_out go{};
    go.size = static_cast<uint32_t>(n);
    return reply(c, 0, &go, sizeof go);
  }
  return reply(c, 0, body.data(), body.size());
}

size_t FuseServer::do_setxattr(Ctx& c) {
  // FUSE_SETXATTR_EXT is not negotiated: the kernel sends the compat form
  // (size and flags only).
  fuse_setxattr_in si{};
  if (!c.in.read(&si, FUSE_COMPAT_SETXATTR_IN_SIZE)) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  if (!xattr_name(c)) return fail(c, Malformed::kBadName, -EINVAL);
  if (si.size > XATTR_SIZE_MAX) return fail(c, Malformed::kBadCount, -E2BIG);
  if (c.in.remaining() < si.size) return fail(c, Malformed::kTruncatedArgs, -EINVAL);
  if (c.in.remaining() > si.size) return fail(c, Malformed::kTrailingBytes, -EINVAL);
  std::vector<uint8_t> value(si.size);
  c.in.read(value.data(), value.size());
  return reply(c, fs_->setxattr(c.h.nodeid, Ctx::sv(c.name), value, si.flags));
}

size_t FuseServer::do_copy_file_range(Ctx& c) {
  fuse_copy_file_range_in ci{};
  if (auto bad = c.only_arg(ci)) return fail(c, *bad, -EINVAL);
  if (!fs_->known(ci.nodeid_out)) return fail(c, Malformed::kUnknownNode, -ESTALE);
  // One request holds the device thread no longer than a maximal WRITE;
  // a short count is a valid answer and the guest continues from there.
  const size_t len = std::min<uint64_t>(ci.len, kMaxWrite);
  const ssize_t n =
      fs_->copy_file_range(c.h.nodeid, ci.fh_in, ci.off_in, ci.nodeid_out, ci.fh_out, ci.off_out, len, ci.flags);
  if (n < 0) return reply(c, static_cast<int>(n));
  fuse_write_out wo{};
  wo.size = static_cast<uint32_t>(n);
  return reply(c, 0, &wo, sizeof wo);
}

size_t FuseServer::dispatch_more(Ctx& c) {
  switch (c.h.opcode) {
    case FUSE_TMPFILE: return do_tmpfile(c);
    case FUSE_MKNOD: return do_mknod(c);
    case FUSE_ACCESS: {
      fuse_access_in ai{};
      if (auto bad = c.only_arg(ai)) return fail(c, *bad, -EINVAL);
      return reply(c, fs_->access(c.h.nodeid, ai.mask));
    }
    case FUSE_GETXATTR: return do_getxattr(c, false);
    case FUSE_LISTXATTR: return do_getxattr(c, true);
    case FUSE_SETXATTR: return do_setxattr(c);
    case FUSE_REMOVEXATTR: {
      if (!xattr_name(c) || !c.done()) return fail(c, Malformed::kBadName, -EINVAL);
      return reply(c, fs_->removexattr(c.h.nodeid, Ctx::sv(c.name)));
    }
    case FUSE_FALLOCATE: {
      fuse_fallocate_in fi{};
      if (auto bad = c.only_arg(fi)) return fail(c, *bad, -EINVAL);
      return reply(c, fs_->fallocate(c.h.nodeid, fi.fh, fi.mode, fi.offset, fi.length));
    }
    case FUSE_LSEEK: {
      fuse_lseek_in li{};
      if (auto bad = c.only_arg(li)) return fail(c, *bad, -EINVAL);
      fuse_lseek_out lo{};
      const int r = fs_->lseek(c.h.nodeid, li.fh, li.offset, li.whence, lo.offset);
      return r ? reply(c, r) : reply(c, 0, &lo, sizeof lo);
    }
    case FUSE_COPY_FILE_RANGE: return do_copy_file_range(c);
    default: break;
  }
  ++stats_.unsupported;
  return reply(c, -ENOSYS);
}

}  // namespace ksbox::devices::fs
