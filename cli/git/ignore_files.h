// The ignore files libgit2 reads while listing a sandbox clone's changes
// (.git/info/exclude and every .gitignore in the work tree) are written by
// the hostile guest. libgit2 (1.5 up to at least 1.9) loops forever in
// parse_ignore_file() when a pattern is cut short by a vertical tab or form
// feed: git_attr_fnmatch__parse() then returns without consuming input. So
// those files are screened before libgit2 sees them, and bounded in size.
#pragma once

#include <string>
#include <string_view>

namespace ksbox::git {

// True when libgit2 could spin on `content` as an ignore file. Conservative:
// any vertical tab or form feed (git itself gives them no meaning).
bool ignore_rules_may_loop_libgit2(std::string_view content);

// Refuses (throws Failure) when .git/info/exclude or a .gitignore below
// `worktree` may make libgit2 loop, is larger than the limit, or the tree is
// deeper than libgit2 could walk. Never follows a symlink; skips nested .git.
void check_ignore_files(const std::string& worktree);

}  // namespace ksbox::git
