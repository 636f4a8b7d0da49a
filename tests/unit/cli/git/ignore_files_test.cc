// Ignore files are guest-written input to libgit2's status walk: ones that
// would make libgit2 1.5 spin forever are refused before it reads them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "cli/git/ignore_files.h"
#include "cli/git/sandbox_clone.h"
#include "cli/git/worktree_changes.h"
#include "git_test_repo.h"

namespace ksbox::git::test {
namespace {

class IgnoreFilesTest : public GitFixture {
 protected:
  void SetUp() override {
    GitFixture::SetUp();
    make_project_and_clone();
  }
  std::vector<WorktreeChange> changes() {
    SandboxClone c = open_sandbox_clone(clone().string());
    return worktree_changes(c.repo.get());
  }
  bool listed(const std::string& path) {
    for (const auto& ch : changes())
      if (ch.path == path) return true;
    return false;
  }
};

TEST(IgnoreRulesTest, VerticalTabAndFormFeedAreFlagged) {
  EXPECT_TRUE(ignore_rules_may_loop_libgit2("\v"));
  EXPECT_TRUE(ignore_rules_may_loop_libgit2("build/\n!\f\n"));
  EXPECT_TRUE(ignore_rules_may_loop_libgit2(std::string("a\0\v", 3)));
  EXPECT_FALSE(ignore_rules_may_loop_libgit2("node_modules/\n*.o\n  spaced name \t\r\n# \\ comment\n"));
  EXPECT_FALSE(ignore_rules_may_loop_libgit2(""));
}

TEST_F(IgnoreFilesTest, OrdinaryIgnoreFilesStillApply) {
  write_file(clone() / ".gitignore", "*.log\n");
  write_file(clone() / "sub/.gitignore", "tmp/\n");
  write_file(clone() / "a.log", "x\n");
  write_file(clone() / "sub/tmp/b", "x\n");
  write_file(clone() / "sub/kept.txt", "x\n");
  EXPECT_FALSE(listed("a.log"));
  EXPECT_FALSE(listed("sub/tmp/b"));
  EXPECT_TRUE(listed("sub/kept.txt"));
}

// Each of these spins libgit2 1.5's parse_ignore_file() forever (checked by
// hand against the library): the test would time out if one got through.
TEST_F(IgnoreFilesTest, LoopingGitignoreAnywhereIsRefused) {
  for (const char* content : {"\v", "!\v", "/\f", " \v", "ok\n\r\v\n"}) {
    write_file(clone() / "deep/er/.gitignore", content);
    EXPECT_FAILS_WITH(changes(), kExitError, "deep/er/.gitignore contains a vertical tab or form feed");
  }
  write_file(clone() / "deep/er/.gitignore", "fine\n");
  EXPECT_NO_THROW(changes());
}

TEST_F(IgnoreFilesTest, LoopingInfoExcludeIsRefused) {
  write_file(clone() / ".git/info/exclude", "*.tmp\n\f\n");
  EXPECT_FAILS_WITH(changes(), kExitError, ".git/info/exclude contains a vertical tab");
}

TEST_F(IgnoreFilesTest, OversizedGitignoreIsRefused) {
  write_file(clone() / "big/.gitignore", std::string((16u << 20) + 1, '#'));
  EXPECT_FAILS_WITH(changes(), kExitError, "big/.gitignore is larger than");
}

// libgit2 enters neither nested repositories nor symlinked directories:
// the walk must not follow them out of the clone either.
TEST_F(IgnoreFilesTest, NestedRepositoriesAndSymlinkedDirectoriesAreNotEntered) {
  TempDir outside;
  write_file(outside.path() / ".gitignore", "\v");
  ASSERT_EQ(::symlink(outside.path().c_str(), (clone() / "linked-dir").c_str()), 0);
  write_file(clone() / "vendor/lib/.git/.gitignore", "\v");
  EXPECT_NO_THROW(changes());
}

// Without the mount confinement libgit2 reads through a symlinked .gitignore.
TEST_F(IgnoreFilesTest, SymlinkedGitignoreIsScreenedThrough) {
  write_file(clone() / "notes.txt", "\v");
  ASSERT_EQ(::symlink("../notes.txt", (clone() / "sub/.gitignore").c_str()), -1);  // no sub/ yet
  write_file(clone() / "sub/x", "x\n");
  ASSERT_EQ(::symlink("../notes.txt", (clone() / "sub/.gitignore").c_str()), 0);
  EXPECT_FAILS_WITH(changes(), kExitError, "sub/.gitignore contains");
}

TEST_F(IgnoreFilesTest, ATreeDeeperThanTheLimitIsRefused) {
  // Longer than PATH_MAX as a whole: made one level at a time.
  int dir = ::open(clone().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int i = 0; i < 1030 && dir >= 0; ++i) {
    ASSERT_EQ(::mkdirat(dir, "d", 0755), 0);
    int next = ::openat(dir, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(dir);
    dir = next;
  }
  ASSERT_GE(dir, 0);
  ::close(dir);
  EXPECT_FAILS_WITH(changes(), kExitError, "deeper than");
}

}  // namespace
}  // namespace ksbox::git::test
