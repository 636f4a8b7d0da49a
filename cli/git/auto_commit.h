// `ksbox-git commit`: commits everything in the clone's work tree (modified,
// deleted and new files, .gitignore honoured) on its current branch.
//
// libgit2 only lists what changed; every file's content is read by us through
// safe_fs.h (O_NOFOLLOW per component), so a symlink the guest swaps in
// during the walk can never make a host file's content land in the commit.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/git/sandbox_clone.h"

namespace ksbox::git {

struct AutoCommitResult {
  bool committed = false;
  std::string commit_id;
  size_t files = 0;                   // paths changed by the commit
  std::string message;
  std::vector<std::string> skipped;  // paths left out (special files, nested repos, too large)
};

AutoCommitResult auto_commit(const SandboxClone& clone, const std::optional<std::string>& message);

}  // namespace ksbox::git
