// The clone is written by a hostile guest: layouts that would lead libgit2 or
// the artifact copy outside it are refused or skipped.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "cli/git/artifacts.h"
#include "cli/git/object_transfer.h"
#include "cli/git/sandbox_clone.h"
#include "cli/git/sync.h"
#include "git_test_repo.h"

namespace ksbox::git::test {
namespace {

class HostileCloneTest : public GitFixture {
 protected:
  void SetUp() override {
    GitFixture::SetUp();
    make_project_and_clone();
  }
  // open_sandbox_clone must refuse, with `why` in the message.
  void expect_refused(const std::string& why) {
    EXPECT_FAILS_WITH(open_sandbox_clone(clone().string()), kExitError, why);
  }
};

TEST_F(HostileCloneTest, AnUntouchedCloneOpens) { EXPECT_NO_THROW(open_sandbox_clone(clone().string())); }

TEST_F(HostileCloneTest, GitDirSymlinkedToTheHostRepoIsRefused) {
  fs::remove_all(clone() / ".git");
  fs::create_directory_symlink(project() / ".git", clone() / ".git");
  expect_refused("not a directory");
  auto before = snapshot(project());
  EXPECT_THROW(run_sync({.clone = clone().string(), .project = project().string()}), Failure);
  EXPECT_EQ(snapshot(project()), before);
}

TEST_F(HostileCloneTest, GitFileIsRefused) {
  fs::remove_all(clone() / ".git");
  write_file(clone() / ".git", "gitdir: " + (project() / ".git").string() + "\n");
  expect_refused("not a directory");
}

TEST_F(HostileCloneTest, SymlinkedObjectsOrRefsAreRefused) {
  fs::rename(clone() / ".git/objects", clone() / "objects-elsewhere");
  fs::create_directory_symlink(clone() / "objects-elsewhere", clone() / ".git/objects");
  expect_refused("objects is a symlink");
  fs::remove(clone() / ".git/objects");
  fs::rename(clone() / "objects-elsewhere", clone() / ".git/objects");
  fs::rename(clone() / ".git/refs/heads", clone() / "heads-elsewhere");
  fs::create_directory_symlink(clone() / "heads-elsewhere", clone() / ".git/refs/heads");
  expect_refused("refs/heads is a symlink");
}

TEST_F(HostileCloneTest, RedirectionFilesAreRefused) {
  write_file(clone() / ".git/objects/info/alternates", (project() / ".git/objects").string() + "\n");
  expect_refused("objects/info/alternates");
  fs::remove(clone() / ".git/objects/info/alternates");
  write_file(clone() / ".git/commondir", (project() / ".git").string() + "\n");
  expect_refused("commondir");
}

TEST_F(HostileCloneTest, ConfigIncludesAreRefused) {
  std::string config = read_file(clone() / ".git/config");
  write_file(clone() / ".git/config", config + "  [Include]\n\tpath = /etc/gitconfig\n");
  expect_refused("[include]");
  write_file(clone() / ".git/config", config + "[includeIf \"gitdir:/\"]\n\tpath = /dev/zero\n");
  expect_refused("[include]");
  // The word elsewhere is fine (a path, a branch name).
  write_file(clone() / ".git/config", config + "[branch \"include-fix\"]\n\tremote = origin\n");
  EXPECT_NO_THROW(open_sandbox_clone(clone().string()));
}

TEST_F(HostileCloneTest, CoreWorktreeIsIgnored) {
  std::string config = read_file(clone() / ".git/config");
  write_file(project() / "host-secret.txt", "secret\n");
  write_file(clone() / ".git/config", config + "[core]\n\tworktree = " + project().string() + "\n");
  SandboxClone c = open_sandbox_clone(clone().string());
  EXPECT_EQ(std::string(git_repository_workdir(c.repo.get())), clone().string() + "/");
}

TEST_F(HostileCloneTest, OversizedOrSpecialGitFilesAreRefused) {
  write_file(clone() / ".git/HEAD", "ref: refs/heads/main\n" + std::string(8192, '\n'));
  expect_refused("HEAD is");
  write_file(clone() / ".git/HEAD", "ref: refs/heads/main\n");
  fs::remove(clone() / ".git/index");
  ASSERT_EQ(::mkfifo((clone() / ".git/index").c_str(), 0644), 0);
  expect_refused("index is not a regular file");
}

TEST_F(HostileCloneTest, AnIndexClaimingMoreEntriesThanItHoldsIsRefused) {
  // "DIRC", version 2, 0x40000001 entries, in 40 bytes: libgit2 would size a
  // table for a billion entries (the fuzz target found it running out of memory).
  std::string index("DIRC\0\0\0\2\x40\0\0\1", 12);
  index.resize(40, '\0');
  write_file(clone() / ".git/index", index);
  expect_refused("its index claims 1073741825 entries in 40 bytes");
}

TEST_F(HostileCloneTest, SymlinkedBranchRefIsRefused) {
  fs::remove(clone() / ".git/refs/heads/main");
  fs::create_symlink(project() / ".git/refs/heads/main", clone() / ".git/refs/heads/main");
  SandboxClone c = open_sandbox_clone(clone().string());
  EXPECT_FAILS_WITH(clone_head_commit(c), kExitError, "refs/heads/main is not a regular file");
}

TEST_F(HostileCloneTest, TreeWithADotGitEntryIsNotFetched) {
  // Write a tree the way a hostile guest could: ".git/config" in a commit.
  Repository repo = open_repo(clone());
  Odb odb = repo_odb(repo.get());
  git_oid blob, inner, outer, commit;
  std::string hook = "[core]\n\tfsmonitor = touch /tmp/pwned\n";
  ASSERT_EQ(git_odb_write(&blob, odb.get(), hook.data(), hook.size(), GIT_OBJECT_BLOB), 0);
  std::string inner_tree = std::string("100644 config") + '\0' + std::string(reinterpret_cast<char*>(blob.id), 20);
  ASSERT_EQ(git_odb_write(&inner, odb.get(), inner_tree.data(), inner_tree.size(), GIT_OBJECT_TREE), 0);
  std::string outer_tree = std::string("40000 .git") + '\0' + std::string(reinterpret_cast<char*>(inner.id), 20);
  ASSERT_EQ(git_odb_write(&outer, odb.get(), outer_tree.data(), outer_tree.size(), GIT_OBJECT_TREE), 0);
  std::string body = "tree " + oid_str(outer) + "\nparent " + head_commit(clone()) +
                     "\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\nevil\n";
  ASSERT_EQ(git_odb_write(&commit, odb.get(), body.data(), body.size(), GIT_OBJECT_COMMIT), 0);
  write_file(clone() / ".git/refs/heads/main", oid_str(commit) + "\n");

  auto before = snapshot(project());
  // libgit2's checkout refuses the path already while deciding...
  EXPECT_FAILS_WITH(run_sync({.clone = clone().string(), .project = project().string()}), kExitError,
                    "invalid path '.git/config'");
  EXPECT_EQ(snapshot(project()), before);
  Repository project_repo = open_repo(project());
  // ... and the object transfer would refuse the tree on its own.
  EXPECT_FAILS_WITH(transfer_objects(repo.get(), project_repo.get(), commit), kExitError,
                    "invalid entry name '.git'");
  Odb project_odb = repo_odb(project_repo.get());
  EXPECT_FALSE(git_odb_exists(project_odb.get(), &commit));
  EXPECT_FALSE(git_odb_exists(project_odb.get(), &outer));
}

TEST_F(HostileCloneTest, ASyncedSymlinkIsNeverWrittenThroughLater) {
  // Sync 1 brings a symlink to a host directory; sync 2 turns it into a
  // directory with a file in it: the file must land in the work tree, not
  // in the directory the old symlink pointed at.
  fs::create_directories(tmp_.path() / "outside");
  fs::create_directory_symlink(tmp_.path() / "outside", clone() / "link");
  commit_all(clone(), "add a symlink");
  ASSERT_EQ(run_sync({.clone = clone().string(), .project = project().string()}).decision, Decision::kFastForward);
  ASSERT_TRUE(fs::is_symlink(project() / "link"));
  fs::remove(clone() / "link");
  write_file(clone() / "link/planted", "x\n");
  commit_all(clone(), "replace it with a directory");
  EXPECT_EQ(run_sync({.clone = clone().string(), .project = project().string()}).decision, Decision::kFastForward);
  EXPECT_FALSE(fs::exists(tmp_.path() / "outside/planted"));
  EXPECT_FALSE(fs::is_symlink(project() / "link"));
  EXPECT_EQ(read_file(project() / "link/planted"), "x\n");
}

TEST_F(HostileCloneTest, ArtifactsCopyRegularFilesOnly) {
  write_file(clone() / "dist/app.js", "console.log(1)\n");
  write_file(clone() / "dist/assets/logo.svg", "<svg/>\n");
  fs::create_symlink("/etc/passwd", clone() / "dist/passwd");
  fs::create_directory_symlink("/etc", clone() / "dist/etc");
  ASSERT_EQ(::mkfifo((clone() / "dist/fifo").c_str(), 0644), 0);
  write_file(clone() / "target/release/bin", "ELF\n");
  fs::create_directory_symlink("/etc", clone() / "out");  // a whole artifact dir as a symlink
  // A symlink already in the project is replaced, never written through.
  write_file(tmp_.path() / "outside.txt", "must stay\n");
  fs::create_directories(project() / "dist");
  fs::create_symlink(tmp_.path() / "outside.txt", project() / "dist/app.js");

  ArtifactReport r = copy_artifacts(clone().string(), project().string());
  EXPECT_EQ(read_file(project() / "dist/app.js"), "console.log(1)\n");
  EXPECT_FALSE(fs::is_symlink(project() / "dist/app.js"));
  EXPECT_EQ(read_file(tmp_.path() / "outside.txt"), "must stay\n");
  EXPECT_EQ(read_file(project() / "dist/assets/logo.svg"), "<svg/>\n");
  EXPECT_EQ(read_file(project() / "target/release/bin"), "ELF\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(project() / "dist/passwd")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(project() / "dist/etc")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(project() / "dist/fifo")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(project() / "out")));

  std::map<std::string, std::string> skipped;
  for (const auto& s : r.skipped) skipped[s.path] = s.reason;
  EXPECT_EQ(skipped, (std::map<std::string, std::string>{{"dist/passwd", "symlink"},
                                                         {"dist/etc", "symlink"},
                                                         {"dist/fifo", "special file"},
                                                         {"out", "symlink"}}));
  std::map<std::string, uint64_t> files;
  for (const auto& d : r.copied) files[d.dir] = d.files;
  EXPECT_EQ(files, (std::map<std::string, uint64_t>{{"dist", 2}, {"target", 1}}));
}

TEST_F(HostileCloneTest, ArtifactSkipListIsBounded) {
  fs::create_directories(clone() / "dist");
  for (size_t i = 0; i < kMaxListedSkips + 5; ++i)
    fs::create_symlink("/etc/passwd", clone() / "dist" / ("l" + std::to_string(i)));
  ArtifactReport r = copy_artifacts(clone().string(), project().string());
  EXPECT_EQ(r.skipped.size(), kMaxListedSkips);
  EXPECT_EQ(r.skipped_count, kMaxListedSkips + 5);
}

TEST_F(HostileCloneTest, SyncCopiesArtifactsOnNothingToSyncButNotOnDryRun) {
  write_file(clone() / "build/out.bin", "bin\n");
  SyncReport dry = run_sync({.clone = clone().string(), .project = project().string(), .dry_run = true,
                             .artifacts = true});
  EXPECT_EQ(dry.artifacts_would_copy, std::vector<std::string>{"build"});
  EXPECT_FALSE(fs::exists(project() / "build"));
  SyncReport r = run_sync({.clone = clone().string(), .project = project().string(), .artifacts = true});
  EXPECT_EQ(r.decision, Decision::kNothing);
  ASSERT_TRUE(r.artifacts);
  EXPECT_EQ(read_file(project() / "build/out.bin"), "bin\n");
}

}  // namespace
}  // namespace ksbox::git::test
