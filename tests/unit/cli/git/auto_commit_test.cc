// `ksbox-git commit`: everything in the clone's work tree, read safely.
#include "cli/git/auto_commit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "cli/git/worktree_changes.h"
#include "git_test_repo.h"

namespace ksbox::git::test {
namespace {

class AutoCommitTest : public GitFixture {
 protected:
  void SetUp() override {
    GitFixture::SetUp();
    make_project_and_clone();
  }
  AutoCommitResult commit(std::optional<std::string> message = std::nullopt) {
    return auto_commit(open_sandbox_clone(clone().string()), message);
  }
  // The blob content at `path` in the clone's HEAD commit ("" if absent).
  std::string committed(const std::string& path, git_filemode_t* mode = nullptr) {
    Repository repo = open_repo(clone());
    git_object* obj = nullptr;
    if (git_revparse_single(&obj, repo.get(), ("HEAD:" + path).c_str()) != 0) return "";
    Object o(obj);
    if (mode != nullptr) {
      git_object* treeobj = nullptr;
      check(git_revparse_single(&treeobj, repo.get(), "HEAD^{tree}"), "tree");
      Object t(treeobj);
      git_tree_entry* e = nullptr;
      check(git_tree_entry_bypath(&e, reinterpret_cast<git_tree*>(t.get()), path.c_str()), "entry");
      *mode = git_tree_entry_filemode(e);
      git_tree_entry_free(e);
    }
    auto* blob = reinterpret_cast<git_blob*>(o.get());
    return std::string(static_cast<const char*>(git_blob_rawcontent(blob)), git_blob_rawsize(blob));
  }
};

TEST_F(AutoCommitTest, CommitsModifiedDeletedAndNewFilesHonouringGitignore) {
  std::string before = head_commit(clone());
  write_file(clone() / "README.md", "changed\n");
  fs::remove(clone() / "src/main.c");
  write_file(clone() / "docs/new.md", "new\n");
  write_file(clone() / "build.log", "ignored by *.log\n");
  write_file(clone() / "node_modules/x/index.js", "ignored dir\n");

  AutoCommitResult r = commit();
  ASSERT_TRUE(r.committed);
  EXPECT_EQ(r.files, 3u);
  EXPECT_EQ(r.message, "ksbox: auto-commit 3 files");
  std::string after = head_commit(clone());
  EXPECT_NE(after, before);
  EXPECT_EQ(r.commit_id, after);
  EXPECT_EQ(read_file(clone() / ".git/HEAD"), "ref: refs/heads/main\n");
  EXPECT_EQ(ref_target(clone(), "refs/heads/main"), after);
  EXPECT_EQ(committed("README.md"), "changed\n");
  EXPECT_EQ(committed("docs/new.md"), "new\n");
  EXPECT_EQ(committed("src/main.c"), "");
  EXPECT_EQ(committed("build.log"), "");
  EXPECT_EQ(committed("node_modules/x/index.js"), "");
  // The index was written: the clone is clean now.
  SandboxClone c = open_sandbox_clone(clone().string());
  EXPECT_TRUE(worktree_changes(c.repo.get()).empty());
  // Author: the clone's identity (propagated from the host at clone time).
  EXPECT_EQ(c.identity.name, "Host User");
}

TEST_F(AutoCommitTest, NothingToCommit) {
  std::string before = head_commit(clone());
  write_file(clone() / "only.log", "ignored\n");
  AutoCommitResult r = commit();
  EXPECT_FALSE(r.committed);
  EXPECT_EQ(head_commit(clone()), before);
}

TEST_F(AutoCommitTest, EmptyOrphanBranchIsNothingToCommit) {
  write_file(clone() / ".git/HEAD", "ref: refs/heads/orphan\n");
  fs::remove(clone() / ".git/index");
  for (const auto& e : fs::directory_iterator(clone()))
    if (e.path().filename() != ".git") fs::remove_all(e.path());
  EXPECT_FALSE(commit().committed);
  EXPECT_EQ(ref_target(clone(), "refs/heads/orphan"), "");
}

TEST_F(AutoCommitTest, MessageOptionAndSingularWording) {
  write_file(clone() / "one.txt", "1\n");
  AutoCommitResult r = commit("my message");
  EXPECT_EQ(r.message, "my message");
  write_file(clone() / "two.txt", "2\n");
  EXPECT_EQ(commit().message, "ksbox: auto-commit 1 file");
}

TEST_F(AutoCommitTest, SymlinksAreCommittedAsLinksNeverFollowed) {
  fs::create_symlink("/etc/passwd", clone() / "passwd-link");
  write_file(clone() / "run.sh", "#!/bin/sh\n");
  ASSERT_EQ(::chmod((clone() / "run.sh").c_str(), 0755), 0);
  AutoCommitResult r = commit();
  ASSERT_TRUE(r.committed);
  git_filemode_t mode{};
  EXPECT_EQ(committed("passwd-link", &mode), "/etc/passwd");  // the link target, not the file
  EXPECT_EQ(mode, GIT_FILEMODE_LINK);
  EXPECT_EQ(committed("run.sh", &mode), "#!/bin/sh\n");
  EXPECT_EQ(mode, GIT_FILEMODE_BLOB_EXECUTABLE);
}

TEST_F(AutoCommitTest, SpecialFilesAreSkipped) {
  ASSERT_EQ(::mkfifo((clone() / "pipe").c_str(), 0644), 0);
  write_file(clone() / "real.txt", "x\n");
  AutoCommitResult r = commit();
  ASSERT_TRUE(r.committed);
  EXPECT_EQ(committed("real.txt"), "x\n");
  EXPECT_EQ(committed("pipe"), "");
}

TEST_F(AutoCommitTest, UsesTheIdentityInTheClonesConfig) {
  write_file(clone() / "a.txt", "a\n");
  set_config(clone(), "user.name", "Guest Override");
  ASSERT_TRUE(commit().committed);
  Repository repo = open_repo(clone());
  git_object* obj = nullptr;
  ASSERT_EQ(git_revparse_single(&obj, repo.get(), "HEAD"), 0);
  Object o(obj);
  EXPECT_STREQ(git_commit_author(reinterpret_cast<git_commit*>(o.get()))->name, "Guest Override");
  EXPECT_STREQ(git_commit_author(reinterpret_cast<git_commit*>(o.get()))->email, "host@example.com");
}

}  // namespace
}  // namespace ksbox::git::test
