// RAII owners for libgit2 objects and the error type of ksbox-git.
#pragma once

#include <git2.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ksbox::git {

// ksbox-git's exit statuses (`ksbox sync` maps them 1:1; `ksbox run` maps
// kExitNotARepo to its own "not a git repository" status).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitNothing = 2;   // sync: nothing to sync; commit: nothing to commit
inline constexpr int kExitConflict = 3;  // sync: diverged, or would overwrite host changes
inline constexpr int kExitNotARepo = 4;

// A failure with the exit status it maps to; `what()` is the user message
// (one line, says what to do).
class Failure : public std::runtime_error {
 public:
  Failure(int exit_code, const std::string& message) : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Throws Failure(kExitError) naming `what` and libgit2's last error if rc < 0.
void check(int rc, std::string_view what);

template <auto Free>
struct GitFree {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
using Repository = std::unique_ptr<git_repository, GitFree<git_repository_free>>;
using Config = std::unique_ptr<git_config, GitFree<git_config_free>>;
using Odb = std::unique_ptr<git_odb, GitFree<git_odb_free>>;
using OdbObject = std::unique_ptr<git_odb_object, GitFree<git_odb_object_free>>;
using Reference = std::unique_ptr<git_reference, GitFree<git_reference_free>>;
using Commit = std::unique_ptr<git_commit, GitFree<git_commit_free>>;
using Tree = std::unique_ptr<git_tree, GitFree<git_tree_free>>;
using Index = std::unique_ptr<git_index, GitFree<git_index_free>>;
using Signature = std::unique_ptr<git_signature, GitFree<git_signature_free>>;
using StatusList = std::unique_ptr<git_status_list, GitFree<git_status_list_free>>;
using Diff = std::unique_ptr<git_diff, GitFree<git_diff_free>>;
using DiffStats = std::unique_ptr<git_diff_stats, GitFree<git_diff_stats_free>>;
using Revwalk = std::unique_ptr<git_revwalk, GitFree<git_revwalk_free>>;
using Object = std::unique_ptr<git_object, GitFree<git_object_free>>;

// git_libgit2_init/shutdown for the lifetime of the object.
class Libgit2 {
 public:
  Libgit2();
  ~Libgit2();
  Libgit2(const Libgit2&) = delete;
  Libgit2& operator=(const Libgit2&) = delete;
};

// The string value of `key`, "" if unset.
std::string config_string(git_config* cfg, const char* key);

std::string oid_str(const git_oid& id);
std::string short_id(const git_oid& id);

}  // namespace ksbox::git
