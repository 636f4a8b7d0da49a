// Temp git repositories for the ksbox-git tests, made with libgit2 (no git
// binary, no global config: the fixture points libgit2's config search path
// at an empty directory).
#pragma once

#include <git2.h>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "cli/git/git_handles.h"

namespace ksbox::git::test {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::string& content);
std::string read_file(const fs::path& path);

// git init with branch `branch`; user.name/email set in the repo's config
// unless `name` is empty.
void init_repo(const fs::path& dir, const std::string& name = "Host User",
               const std::string& email = "host@example.com", const std::string& branch = "main");
// Stages everything (new, modified, deleted) and commits on HEAD; returns the id.
std::string commit_all(const fs::path& dir, const std::string& message);
Repository open_repo(const fs::path& dir);
Odb repo_odb(git_repository* repo);
void set_config(const fs::path& dir, const std::string& key, const std::string& value);
std::string head_commit(const fs::path& dir);  // "" if unborn
std::string ref_target(const fs::path& dir, const std::string& ref);  // "" if missing
std::string config_value(const fs::path& dir, const std::string& key);  // "" if unset

// Everything a sync must leave alone when it refuses: refs and their
// targets, HEAD, the index bytes and every work-tree file's content.
std::map<std::string, std::string> snapshot(const fs::path& dir);
// Files under .git/objects (loose objects and packs).
size_t object_files(const fs::path& dir);

// Succeeds when `f` throws Failure with `exit_code` and `needle` in its message.
template <typename F>
::testing::AssertionResult FailsWith(F&& f, int exit_code, std::string_view needle) {
  try {
    f();
  } catch (const Failure& e) {
    if (e.exit_code() == exit_code && std::string_view(e.what()).find(needle) != std::string_view::npos)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "Failure(" << e.exit_code() << ", \"" << e.what() << "\")";
  }
  return ::testing::AssertionFailure() << "no Failure (expected " << exit_code << ", \"" << needle << "\")";
}
#define EXPECT_FAILS_WITH(stmt, code, needle) \
  EXPECT_TRUE(::ksbox::git::test::FailsWith([&] { (void)(stmt); }, (code), (needle)))

// Project + its sandbox clone, made by clone_project.
class GitFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  fs::path project() const { return tmp_.path() / "project"; }
  fs::path clone() const { return tmp_.path() / "clone"; }
  void make_project_and_clone();

  Libgit2 lib_;
  TempDir tmp_;
  TempDir config_home_;
};

}  // namespace ksbox::git::test
