// `ksbox-git clone` on temp repositories.
#include "cli/git/clone_project.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "git_test_repo.h"

namespace ksbox::git::test {
namespace {

class CloneTest : public GitFixture {};

TEST_F(CloneTest, ClonesTheCurrentBranchWithTheHostIdentity) {
  init_repo(project());
  write_file(project() / "a.txt", "a\n");
  std::string first = commit_all(project(), "first");
  // Check out another branch on the host: the clone follows it.
  {
    Repository repo = open_repo(project());
    git_commit* c = nullptr;
    git_oid id;
    git_oid_fromstr(&id, first.c_str());
    ASSERT_EQ(git_commit_lookup(&c, repo.get(), &id), 0);
    git_reference* br = nullptr;
    ASSERT_EQ(git_branch_create(&br, repo.get(), "feature", c, 0), 0);
    git_reference_free(br);
    git_commit_free(c);
    ASSERT_EQ(git_repository_set_head(repo.get(), "refs/heads/feature"), 0);
  }
  write_file(project() / "b.txt", "b\n");
  std::string second = commit_all(project(), "second");

  fs::create_directories(project() / "sub/dir");
  CloneResult r = clone_project({(project() / "sub/dir").string(), clone().string(), std::nullopt, std::nullopt});
  EXPECT_EQ(r.branch, "feature");
  EXPECT_EQ(r.commit, second);
  EXPECT_EQ(read_file(clone() / ".git/HEAD"), "ref: refs/heads/feature\n");
  EXPECT_EQ(head_commit(clone()), second);
  EXPECT_EQ(read_file(clone() / "b.txt"), "b\n");
  EXPECT_EQ(config_value(clone(), "ksbox.branch"), "feature");
  EXPECT_EQ(config_value(clone(), "user.name"), "Host User");
  EXPECT_EQ(config_value(clone(), "user.email"), "host@example.com");
  EXPECT_FALSE(fs::exists(clone() / ".git/commondir"));
  EXPECT_FALSE(fs::exists(clone() / ".git/objects/info/alternates"));
}

TEST_F(CloneTest, ObjectFilesAreCopiesNotHardLinks) {
  make_project_and_clone();
  size_t objects = 0;
  for (const auto& e : fs::recursive_directory_iterator(clone() / ".git/objects")) {
    if (!e.is_regular_file()) continue;
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u) << e.path();  // a hard link would let the guest edit the host's object
    ++objects;
  }
  EXPECT_GE(objects, 3u);
}

TEST_F(CloneTest, ExplicitIdentityWins) {
  init_repo(project());
  write_file(project() / "a.txt", "a\n");
  commit_all(project(), "first");
  CloneResult r = clone_project({project().string(), clone().string(), "Agent Smith", "agent@example.com"});
  EXPECT_EQ(r.name, "Agent Smith");
  EXPECT_EQ(config_value(clone(), "user.name"), "Agent Smith");
  EXPECT_EQ(config_value(clone(), "user.email"), "agent@example.com");
}

TEST_F(CloneTest, NoIdentityAnywhereLeavesItUnset) {
  init_repo(project(), "");
  write_file(project() / "a.txt", "a\n");
  commit_all(project(), "first");
  CloneResult r = clone_project({project().string(), clone().string(), std::nullopt, std::nullopt});
  EXPECT_EQ(r.name, "");
  EXPECT_EQ(config_value(clone(), "user.name"), "");
  EXPECT_EQ(config_value(clone(), "user.email"), "");
}

TEST_F(CloneTest, IdentityFromTheHostsGlobalConfig) {
  init_repo(project(), "");
  write_file(config_home_.path() / ".gitconfig", "[user]\n\tname = Global Name\n\temail = global@example.com\n");
  write_file(project() / "a.txt", "a\n");
  commit_all(project(), "first");
  clone_project({project().string(), clone().string(), std::nullopt, std::nullopt});
  EXPECT_EQ(config_value(clone(), "user.name"), "Global Name");
  EXPECT_EQ(config_value(clone(), "user.email"), "global@example.com");
}

TEST_F(CloneTest, NotARepositoryIsExit4) {
  fs::create_directories(tmp_.path() / "plain");
  EXPECT_FAILS_WITH(clone_project({(tmp_.path() / "plain").string(), clone().string(), std::nullopt, std::nullopt}),
                    kExitNotARepo, "not in a git repository");
  EXPECT_FALSE(fs::exists(clone()));
}

TEST_F(CloneTest, ProjectWithoutCommitsIsAnError) {
  init_repo(project());
  EXPECT_FAILS_WITH(clone_project({project().string(), clone().string(), std::nullopt, std::nullopt}), kExitError,
                    "no commits");
}

}  // namespace
}  // namespace ksbox::git::test
