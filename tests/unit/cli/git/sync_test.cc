// `ksbox-git sync` on temp repositories: the project, and its clone playing
// the guest's part.
#include "cli/git/sync.h"

#include <gtest/gtest.h>

#include "git_test_repo.h"

namespace ksbox::git::test {
namespace {

class SyncTest : public GitFixture {
 protected:
  void SetUp() override {
    GitFixture::SetUp();
    make_project_and_clone();
    base_ = head_commit(project());
  }
  SyncReport sync(bool dry_run = false) {
    return run_sync({.clone = clone().string(), .project = project().string(), .dry_run = dry_run});
  }
  std::string base_;
};

TEST_F(SyncTest, FastForwardMovesTheBranchAndTheWorkTree) {
  write_file(clone() / "README.md", "hello from the sandbox\n");
  write_file(clone() / "src/new.c", "void f(void) {}\n");
  fs::remove(clone() / "src/main.c");
  std::string tip = commit_all(clone(), "agent work\n\nwith a body");

  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kFastForward);
  EXPECT_EQ(exit_code(r.decision), 0);
  EXPECT_EQ(ref_target(project(), "refs/heads/main"), tip);
  EXPECT_EQ(read_file(project() / ".git/HEAD"), "ref: refs/heads/main\n");
  EXPECT_EQ(ref_target(project(), kSyncRef), tip);
  EXPECT_EQ(read_file(project() / "README.md"), "hello from the sandbox\n");
  EXPECT_EQ(read_file(project() / "src/new.c"), "void f(void) {}\n");
  EXPECT_FALSE(fs::exists(project() / "src/main.c"));
  ASSERT_EQ(r.commits.size(), 1u);
  EXPECT_EQ(r.commit_count, 1u);
  EXPECT_EQ(r.commits[0].id, tip.substr(0, 7));
  EXPECT_EQ(r.commits[0].author, "Test Author");
  EXPECT_EQ(r.commits[0].subject, "agent work");
  EXPECT_EQ(r.files_changed, 3u);
  EXPECT_EQ(r.insertions, 2u);
  EXPECT_EQ(r.deletions, 2u);
  EXPECT_EQ(r.from, base_);
  EXPECT_EQ(r.to, tip);
  // The host's index follows: nothing shows as changed afterwards.
  auto snap = snapshot(project());
  EXPECT_EQ(sync().decision, Decision::kNothing);
  EXPECT_EQ(snapshot(project()), snap);
}

TEST_F(SyncTest, SeveralCommitsAreListedNewestFirst) {
  write_file(clone() / "a.txt", "1\n");
  commit_all(clone(), "one");
  write_file(clone() / "a.txt", "2\n");
  std::string tip = commit_all(clone(), "two");
  SyncReport r = sync();
  ASSERT_EQ(r.commits.size(), 2u);
  EXPECT_EQ(r.commits[0].subject, "two");
  EXPECT_EQ(r.commits[1].subject, "one");
  EXPECT_EQ(head_commit(project()), tip);
}

TEST_F(SyncTest, DivergedLeavesTheHostByteIdentical) {
  write_file(clone() / "README.md", "sandbox\n");
  commit_all(clone(), "sandbox work");
  write_file(project() / "host.txt", "host\n");
  commit_all(project(), "host work");
  write_file(project() / "uncommitted.txt", "dirty\n");
  auto before = snapshot(project());
  size_t objects = object_files(project());

  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kDiverged);
  EXPECT_EQ(exit_code(r.decision), 3);
  EXPECT_EQ(r.commit_count, 1u);
  EXPECT_EQ(snapshot(project()), before);
  EXPECT_EQ(object_files(project()), objects);
}

TEST_F(SyncTest, DryRunChangesNothing) {
  write_file(clone() / "README.md", "sandbox\n");
  std::string tip = commit_all(clone(), "sandbox work");
  auto before = snapshot(project());
  size_t objects = object_files(project());

  SyncReport r = sync(true);
  EXPECT_EQ(r.decision, Decision::kFastForward);  // what a real sync would do
  EXPECT_TRUE(r.dry_run);
  ASSERT_EQ(r.commits.size(), 1u);
  EXPECT_EQ(r.commits[0].subject, "sandbox work");
  EXPECT_EQ(r.files_changed, 1u);
  EXPECT_EQ(r.insertions, 1u);
  EXPECT_EQ(r.deletions, 1u);
  EXPECT_EQ(snapshot(project()), before);
  EXPECT_EQ(object_files(project()), objects);  // not even the objects
  EXPECT_EQ(ref_target(project(), kSyncRef), "");
  EXPECT_EQ(sync().decision, Decision::kFastForward);
  EXPECT_EQ(head_commit(project()), tip);
}

TEST_F(SyncTest, NothingToSync) {
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kNothing);
  EXPECT_EQ(exit_code(r.decision), 2);
  EXPECT_TRUE(r.commits.empty());
}

TEST_F(SyncTest, HostAheadIsNothingToSync) {
  write_file(project() / "host.txt", "host\n");
  std::string host_tip = commit_all(project(), "host work");
  auto before = snapshot(project());
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kNothing);
  EXPECT_EQ(head_commit(project()), host_tip);
  EXPECT_EQ(snapshot(project()), before);
}

TEST_F(SyncTest, UncommittedCloneFilesAreReportedNotCopied) {
  write_file(clone() / "README.md", "edited, not committed\n");
  write_file(clone() / "notes/todo.txt", "new\n");
  write_file(clone() / "debug.log", "ignored\n");
  fs::remove(clone() / "src/main.c");
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kNothing);
  std::map<std::string, std::string> got;
  for (const auto& u : r.uncommitted) got[u.path] = u.status;
  EXPECT_EQ(got, (std::map<std::string, std::string>{
                     {"README.md", "modified"}, {"notes/todo.txt", "untracked"}, {"src/main.c", "deleted"}}));
  EXPECT_EQ(read_file(project() / "README.md"), "hello\n");
  EXPECT_FALSE(fs::exists(project() / "notes"));
  EXPECT_TRUE(fs::exists(project() / "src/main.c"));
}

TEST_F(SyncTest, HostChangesInTheWayAreAConflictAndUntouched) {
  write_file(clone() / "README.md", "sandbox\n");
  commit_all(clone(), "sandbox work");
  write_file(project() / "README.md", "host edit, not committed\n");
  auto before = snapshot(project());
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kConflict);
  EXPECT_EQ(exit_code(r.decision), 3);
  EXPECT_EQ(r.conflicts, std::vector<std::string>{"README.md"});
  EXPECT_EQ(snapshot(project()), before);
}

TEST_F(SyncTest, UntrackedHostFileInTheWayIsAConflict) {
  write_file(clone() / "new.txt", "sandbox\n");
  commit_all(clone(), "sandbox adds new.txt");
  write_file(project() / "new.txt", "host's own untracked file\n");
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kConflict);
  EXPECT_EQ(read_file(project() / "new.txt"), "host's own untracked file\n");
  EXPECT_EQ(head_commit(project()), base_);
}

TEST_F(SyncTest, HostChangesElsewhereAreKept) {
  write_file(clone() / "README.md", "sandbox\n");
  std::string tip = commit_all(clone(), "sandbox work");
  write_file(project() / "src/main.c", "host edit, not committed\n");
  write_file(project() / "scratch.txt", "untracked\n");
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kFastForward);
  EXPECT_EQ(head_commit(project()), tip);
  EXPECT_EQ(read_file(project() / "README.md"), "sandbox\n");
  EXPECT_EQ(read_file(project() / "src/main.c"), "host edit, not committed\n");
  EXPECT_EQ(read_file(project() / "scratch.txt"), "untracked\n");
}

TEST_F(SyncTest, DetachedHostHeadRefuses) {
  write_file(clone() / "README.md", "sandbox\n");
  commit_all(clone(), "sandbox work");
  {
    Repository repo = open_repo(project());
    git_oid id;
    git_oid_fromstr(&id, base_.c_str());
    ASSERT_EQ(git_repository_set_head_detached(repo.get(), &id), 0);
  }
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kHostNotOnBranch);
  EXPECT_EQ(exit_code(r.decision), 3);
  EXPECT_EQ(head_commit(project()), base_);
  EXPECT_EQ(ref_target(project(), "refs/heads/main"), base_);
}

TEST_F(SyncTest, HostOnAnotherBranchRefuses) {
  write_file(clone() / "README.md", "sandbox\n");
  commit_all(clone(), "sandbox work");
  {
    Repository repo = open_repo(project());
    git_object* head = nullptr;
    ASSERT_EQ(git_revparse_single(&head, repo.get(), "HEAD"), 0);
    Object h(head);
    git_reference* br = nullptr;
    ASSERT_EQ(git_branch_create(&br, repo.get(), "other", reinterpret_cast<git_commit*>(h.get()), 0), 0);
    git_reference_free(br);
    ASSERT_EQ(git_repository_set_head(repo.get(), "refs/heads/other"), 0);
  }
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kWrongBranch);
  EXPECT_EQ(r.clone_branch, "main");
  EXPECT_EQ(ref_target(project(), "refs/heads/other"), base_);
  EXPECT_EQ(ref_target(project(), "refs/heads/main"), base_);
}

TEST_F(SyncTest, HostMidMergeRefuses) {
  write_file(clone() / "README.md", "sandbox\n");
  commit_all(clone(), "sandbox work");
  write_file(project() / ".git/MERGE_HEAD", base_ + "\n");
  SyncReport r = sync();
  EXPECT_EQ(r.decision, Decision::kHostBusy);
  EXPECT_EQ(head_commit(project()), base_);
}

TEST_F(SyncTest, AutoCommitThenSync) {
  write_file(clone() / "README.md", "sandbox, uncommitted\n");
  SyncReport r = run_sync({.clone = clone().string(), .project = project().string(), .auto_commit = true,
                           .message = "agent checkpoint"});
  EXPECT_EQ(r.decision, Decision::kFastForward);
  ASSERT_TRUE(r.auto_commit);
  EXPECT_TRUE(r.auto_commit->committed);
  ASSERT_EQ(r.commits.size(), 1u);
  EXPECT_EQ(r.commits[0].subject, "agent checkpoint");
  EXPECT_EQ(r.commits[0].author, "Host User");  // the identity the clone got from the host
  EXPECT_TRUE(r.uncommitted.empty());
  EXPECT_EQ(read_file(project() / "README.md"), "sandbox, uncommitted\n");
}

TEST_F(SyncTest, StatusCountsAheadBehindAndUncommitted) {
  write_file(clone() / "a.txt", "1\n");
  commit_all(clone(), "one");
  write_file(clone() / "b.txt", "2\n");
  commit_all(clone(), "two");
  write_file(clone() / "c.txt", "uncommitted\n");
  write_file(project() / "h.txt", "h\n");
  commit_all(project(), "host");
  auto before = snapshot(project());
  StatusReport s = sync_status(clone().string(), project().string());
  EXPECT_EQ(s.branch, "main");
  EXPECT_EQ(s.ahead, 2u);
  EXPECT_EQ(s.behind, 1u);
  EXPECT_EQ(s.uncommitted, 1u);
  EXPECT_EQ(snapshot(project()), before);
}

TEST_F(SyncTest, ProjectNotARepositoryIsExit4) {
  fs::create_directories(tmp_.path() / "plain");
  EXPECT_FAILS_WITH(run_sync({.clone = clone().string(), .project = (tmp_.path() / "plain").string()}),
                    kExitNotARepo, "not in a git repository");
}

}  // namespace
}  // namespace ksbox::git::test
