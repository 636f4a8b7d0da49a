// `ksbox-git sync` and `ksbox-git status`: bringing the clone's committed work
// into the project's current branch, fast-forward only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/git/artifacts.h"
#include "cli/git/auto_commit.h"
#include "cli/git/sync_decision.h"
#include "cli/git/worktree_changes.h"

namespace ksbox::git {

// The ref in the project repository that holds the clone tip of the last
// successful sync (written only then: a refused sync writes nothing).
inline constexpr const char* kSyncRef = "refs/ksbox/sync/head";
// Longest list printed (commits, uncommitted files, conflicts).
inline constexpr size_t kMaxListedCommits = 1000;

struct SyncOptions {
  std::string clone;
  std::string project;
  bool dry_run = false;
  bool artifacts = false;
  bool auto_commit = false;
  std::optional<std::string> message;
};

struct CommitInfo {
  std::string id;  // short
  std::string author;
  std::string subject;
};

struct SyncReport {
  Decision decision = Decision::kNothing;
  bool dry_run = false;
  std::string project;   // work tree
  std::string clone;
  std::string branch;    // host branch ("" when detached)
  std::string clone_branch;  // the host branch the clone was made from (ksbox.branch)
  std::optional<std::string> from;  // host tip before
  std::optional<std::string> to;    // clone tip
  std::vector<CommitInfo> commits;  // at most kMaxListedCommits
  size_t commit_count = 0;
  size_t files_changed = 0;
  size_t insertions = 0;
  size_t deletions = 0;
  std::vector<std::string> conflicts;  // host paths in the way
  std::vector<WorktreeChange> uncommitted;
  std::optional<AutoCommitResult> auto_commit;
  std::optional<ArtifactReport> artifacts;
  std::vector<std::string> artifacts_would_copy;  // --dry-run --artifacts
};

// Throws Failure for errors (exit 1, or 4 if --project is not a repository).
SyncReport run_sync(const SyncOptions& options);

struct StatusReport {
  std::string branch;  // "" when detached
  size_t ahead = 0;
  size_t behind = 0;
  size_t uncommitted = 0;
};

StatusReport sync_status(const std::string& clone, const std::string& project);

}  // namespace ksbox::git
