// The sync decision table, without any repository.
#include "cli/git/sync_decision.h"

#include <gtest/gtest.h>

#include "cli/git/git_handles.h"

namespace ksbox::git {
namespace {

SyncFacts facts(bool clone_in_host, bool host_in_clone, bool conflict = false) {
  return {.host_head = HostHead::kBranch,
          .host_tip = "aaaa",
          .clone_tip = "bbbb",
          .clone_is_ancestor_of_host = clone_in_host,
          .host_is_ancestor_of_clone = host_in_clone,
          .checkout_would_conflict = conflict};
}

TEST(SyncDecision, SameTipIsNothing) {
  SyncFacts f = facts(false, false);
  f.clone_tip = "aaaa";
  EXPECT_EQ(decide(f), Decision::kNothing);
  EXPECT_EQ(exit_code(decide(f)), kExitNothing);
}

TEST(SyncDecision, HostAheadIsNothing) {
  EXPECT_EQ(decide(facts(true, false)), Decision::kNothing);
  EXPECT_STREQ(result_name(Decision::kNothing), "nothing");
}

TEST(SyncDecision, CloneAheadFastForwards) {
  EXPECT_EQ(decide(facts(false, true)), Decision::kFastForward);
  EXPECT_EQ(exit_code(Decision::kFastForward), kExitOk);
  EXPECT_STREQ(result_name(Decision::kFastForward), "synced");
}

TEST(SyncDecision, CloneAheadButHostChangesInTheWayIsConflict) {
  EXPECT_EQ(decide(facts(false, true, true)), Decision::kConflict);
  EXPECT_EQ(exit_code(Decision::kConflict), kExitConflict);
  EXPECT_STREQ(result_name(Decision::kConflict), "conflict");
}

TEST(SyncDecision, NeitherAncestorIsDiverged) {
  EXPECT_EQ(decide(facts(false, false)), Decision::kDiverged);
  // The conflict flag only matters for a fast-forward.
  EXPECT_EQ(decide(facts(false, false, true)), Decision::kDiverged);
  EXPECT_EQ(exit_code(Decision::kDiverged), kExitConflict);
  EXPECT_STREQ(result_name(Decision::kDiverged), "diverged");
}

TEST(SyncDecision, CloneWithoutCommitsIsNothing) {
  SyncFacts f = facts(false, true);
  f.clone_tip.reset();
  EXPECT_EQ(decide(f), Decision::kNothing);
  f.host_head = HostHead::kDetached;
  EXPECT_EQ(decide(f), Decision::kNothing);
}

TEST(SyncDecision, HostNotOnABranchRefuses) {
  for (HostHead h : {HostHead::kDetached, HostHead::kUnborn}) {
    SyncFacts f = facts(false, true);
    f.host_head = h;
    EXPECT_EQ(decide(f), Decision::kHostNotOnBranch);
  }
  EXPECT_EQ(exit_code(Decision::kHostNotOnBranch), kExitConflict);
}

TEST(SyncDecision, HostOnAnotherBranchOrMidMergeRefuses) {
  SyncFacts f = facts(false, true);
  f.branch_mismatch = true;
  EXPECT_EQ(decide(f), Decision::kWrongBranch);
  f.branch_mismatch = false;
  f.host_operation_in_progress = true;
  EXPECT_EQ(decide(f), Decision::kHostBusy);
  // Even when the clone has nothing new.
  f = facts(true, false);
  f.branch_mismatch = true;
  EXPECT_EQ(decide(f), Decision::kWrongBranch);
  EXPECT_EQ(exit_code(Decision::kWrongBranch), kExitConflict);
  EXPECT_EQ(exit_code(Decision::kHostBusy), kExitConflict);
  EXPECT_STREQ(result_name(Decision::kWrongBranch), "conflict");
}

}  // namespace
}  // namespace ksbox::git
