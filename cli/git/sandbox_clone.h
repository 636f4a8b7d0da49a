// Opening the sandbox's clone, which the guest writes, from the host.
//
// Everything in it is hostile. libgit2 runs no hooks, filters or fsmonitor;
// on top of that, before libgit2 sees the clone we refuse layouts that would
// make it read outside the clone (a symlinked .git or objects/refs, a gitfile,
// commondir, alternates, config includes) or read unbounded files, and the
// repository is opened bare (core.worktree ignored) with the clone's config
// replaced by an empty one once opened.
//
// libgit2 opens paths by name, so a guest could swap a directory for a
// symlink between these checks and libgit2's access: ksbox-git first
// confines the clone (clone_confinement.h: no symlink in it is followed at
// all), and the path libgit2 resolved at open is checked afterwards. Content
// read for commits goes through safe_fs.h regardless.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cli/git/git_handles.h"

namespace ksbox::git {

struct Identity {
  std::string name;
  std::string email;
};

struct SandboxClone {
  Repository repo;
  std::string root;    // the clone's work tree, absolute, no trailing slash
  std::string gitdir;  // root + "/.git"
  Identity identity;   // user.name/email from the clone's config, else defaults
  std::string branch;  // ksbox.branch: the host branch it was cloned from
};

// Opens the clone at `dir` after the checks above; throws Failure.
SandboxClone open_sandbox_clone(const std::string& dir);

// Checks the loose-ref file for `refname` (e.g. "refs/heads/main") in the
// clone's git dir: every directory on the way is a real directory and the file,
// if present, a small regular file. Throws Failure otherwise.
void check_ref_file(const std::string& gitdir, const std::string& refname);

// True if a line of this git config text opens an [include] or [includeIf]
// section (such a clone is refused). Exposed for the fuzz target.
bool config_has_include(std::string_view config);

// The clone's HEAD commit, resolving the symbolic chain with check_ref_file
// at every step; nullopt when HEAD is unborn.
std::optional<git_oid> clone_head_commit(const SandboxClone& clone);

}  // namespace ksbox::git
