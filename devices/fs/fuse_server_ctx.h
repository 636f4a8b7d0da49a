// FuseServer's per-request state, shared by its .cc files (not a public
// header).
#pragma once

#include <climits>
#include <optional>
#include <string_view>
#include <vector>

#include "devices/fs/fuse_server.h"

namespace ksbox::devices::fs {

struct FuseServer::Ctx {
  fuse_in_header h;
  RequestReader in;
  ReplyWriter out;
  std::vector<char>& name;  // the server's, reused by every request
  std::vector<char>& name2;

  template <typename T>
  bool arg(T& v) {
    auto r = in.read<T>();
    if (r) v = *r;
    return r.has_value();
  }
  // A fixed argument that must be all the request carries; why not if not.
  template <typename T>
  std::optional<Malformed> only_arg(T& v) {
    if (!arg(v)) return Malformed::kTruncatedArgs;
    if (!done()) return Malformed::kTrailingBytes;
    return std::nullopt;
  }
  bool done() const { return in.remaining() == 0; }
  // A single path component into `v`.
  bool component(std::vector<char>& v) { return in.read_cstring(NAME_MAX, v) && valid_name(sv(v)); }
  static std::string_view sv(const std::vector<char>& v) { return {v.data(), v.size()}; }
};

// The reply of CREATE and TMPFILE.
struct CreateOut {
  fuse_entry_out e;
  fuse_open_out o;
};

}  // namespace ksbox::devices::fs
