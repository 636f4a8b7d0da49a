// The host's project repository (trusted): discovery from any path inside its
// work tree, and the state of its HEAD.
#pragma once

#include <optional>
#include <string>

#include "cli/git/git_handles.h"
#include "cli/git/sync_decision.h"

namespace ksbox::git {

struct Project {
  Repository repo;
  std::string workdir;  // no trailing slash
};

// Throws Failure(kExitNotARepo) if `path` is not inside a git work tree.
Project open_project(const std::string& path);

struct HostBranch {
  HostHead head = HostHead::kBranch;
  std::string ref;   // "refs/heads/main" (kBranch, kUnborn)
  std::string name;  // "main"
  std::optional<git_oid> tip;
};

HostBranch host_branch(git_repository* repo);

}  // namespace ksbox::git
