#include "cli/git/sync_decision.h"

#include "cli/git/git_handles.h"

namespace ksbox::git {

Decision decide(const SyncFacts& f) {
  if (!f.clone_tip) return Decision::kNothing;
  if (f.host_head != HostHead::kBranch) return Decision::kHostNotOnBranch;
  if (f.branch_mismatch) return Decision::kWrongBranch;
  if (f.host_operation_in_progress) return Decision::kHostBusy;
  if (*f.clone_tip == f.host_tip || f.clone_is_ancestor_of_host) return Decision::kNothing;
  if (!f.host_is_ancestor_of_clone) return Decision::kDiverged;
  return f.checkout_would_conflict ? Decision::kConflict : Decision::kFastForward;
}

int exit_code(Decision d) {
  switch (d) {
    case Decision::kFastForward:
      return kExitOk;
    case Decision::kNothing:
      return kExitNothing;
    case Decision::kDiverged:
    case Decision::kConflict:
    case Decision::kHostNotOnBranch:
    case Decision::kWrongBranch:
    case Decision::kHostBusy:
      return kExitConflict;
  }
  return kExitError;
}

const char* result_name(Decision d) {
  switch (d) {
    case Decision::kFastForward:
      return "synced";
    case Decision::kNothing:
      return "nothing";
    case Decision::kDiverged:
      return "diverged";
    case Decision::kConflict:
    case Decision::kHostNotOnBranch:
    case Decision::kWrongBranch:
    case Decision::kHostBusy:
      return "conflict";
  }
  return "error";
}

}  // namespace ksbox::git
