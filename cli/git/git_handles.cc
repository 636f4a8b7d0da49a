#include "cli/git/git_handles.h"

#include <fmt/format.h>

namespace ksbox::git {

void check(int rc, std::string_view what) {
  if (rc >= 0) return;
  const git_error* e = git_error_last();
  throw Failure(kExitError, fmt::format("{}: {}", what, e != nullptr && e->message != nullptr ? e->message : "libgit2 error"));
}

Libgit2::Libgit2() {
  git_libgit2_init();
  // Every object read from the sandbox's clone is hashed again on read, so a
  // hostile object database cannot pass off other content under a known id.
  git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
}

Libgit2::~Libgit2() { git_libgit2_shutdown(); }

std::string config_string(git_config* cfg, const char* key) {
  git_buf buf = GIT_BUF_INIT;
  std::string value;
  if (git_config_get_string_buf(&buf, cfg, key) == 0) value.assign(buf.ptr, buf.size);
  git_buf_dispose(&buf);
  return value;
}

std::string oid_str(const git_oid& id) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &id);
  return buf;
}

std::string short_id(const git_oid& id) { return oid_str(id).substr(0, 7); }

}  // namespace ksbox::git
