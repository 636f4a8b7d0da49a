// What `sync` does, decided from facts about the two repositories. Pure: no
// libgit2, so every case is unit-tested.
#pragma once

#include <optional>
#include <string>

namespace ksbox::git {

enum class HostHead { kBranch, kDetached, kUnborn };

struct SyncFacts {
  HostHead host_head = HostHead::kBranch;
  std::string host_tip;                  // the host branch's commit (when kBranch)
  std::optional<std::string> clone_tip;  // nullopt: the clone has no commit
  bool clone_is_ancestor_of_host = false;
  bool host_is_ancestor_of_clone = false;
  // The fast-forward checkout would overwrite uncommitted host changes.
  bool checkout_would_conflict = false;
  // The host is mid-merge, rebase, cherry-pick... (git_repository_state).
  bool host_operation_in_progress = false;
  // The clone was made from another branch than the one now checked out on
  // the host: its work belongs there, not here.
  bool branch_mismatch = false;
};

enum class Decision {
  kNothing,          // clone tip already in the host branch
  kFastForward,      // move the host branch to the clone tip
  kDiverged,         // both sides have commits of their own
  kConflict,         // fast-forward possible, but host changes are in the way
  kHostNotOnBranch,  // host HEAD detached or unborn: nothing to move
  kWrongBranch,      // host is on another branch than the clone was made from
  kHostBusy,         // host is in the middle of a merge/rebase/...
};

Decision decide(const SyncFacts& facts);
int exit_code(Decision d);
const char* result_name(Decision d);  // the --json "result"

}  // namespace ksbox::git
