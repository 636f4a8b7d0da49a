// Closes the symlink races that checks alone cannot: libgit2 opens paths by
// name, so a guest swapping `.git`, `objects` or `refs` for a symlink between
// our checks and libgit2's access could redirect reads (and, for `commit`,
// writes: the clone's index and branch ref into the host repository).
//
// confine_clone() moves this process into a private mount namespace (a user
// namespace too when unprivileged) and bind-mounts the clone over itself with
// MS_NOSYMFOLLOW: from then on no symlink inside the clone is followed by any
// path lookup, whatever the guest does meanwhile. Paths stay the same, so
// the rest of ksbox-git and libgit2 need no change. Must be called while the
// process is single-threaded, before the clone is opened.
#pragma once

#include <string>

namespace ksbox::git {

// Returns "" on success, else why not (the caller warns and relies on the
// checks of sandbox_clone.h alone).
std::string confine_clone(const std::string& clone_root);

}  // namespace ksbox::git
