// The clone's uncommitted changes (work tree and index against HEAD),
// honouring .gitignore, submodules excluded.
#pragma once

#include <git2.h>

#include <string>
#include <vector>

namespace ksbox::git {

struct WorktreeChange {
  std::string path;
  std::string status;  // "modified", "untracked", "deleted", "added", "renamed", "typechange", "conflicted"
  unsigned flags = 0;  // git_status_t
};

// Throws Failure when an ignore file in the clone could make libgit2 loop
// (cli/git/ignore_files.h).
std::vector<WorktreeChange> worktree_changes(git_repository* repo);

}  // namespace ksbox::git
