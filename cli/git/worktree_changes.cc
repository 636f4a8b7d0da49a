#include "cli/git/worktree_changes.h"

#include "cli/git/git_handles.h"
#include "cli/git/ignore_files.h"

namespace ksbox::git {
namespace {

const char* describe(unsigned s) {
  if (s & GIT_STATUS_CONFLICTED) return "conflicted";
  if (s & (GIT_STATUS_WT_DELETED | GIT_STATUS_INDEX_DELETED)) return "deleted";
  if (s & (GIT_STATUS_WT_TYPECHANGE | GIT_STATUS_INDEX_TYPECHANGE)) return "typechange";
  if (s & (GIT_STATUS_WT_RENAMED | GIT_STATUS_INDEX_RENAMED)) return "renamed";
  if (s & GIT_STATUS_INDEX_NEW) return "added";
  if (s & GIT_STATUS_WT_NEW) return "untracked";
  return "modified";
}

}  // namespace

std::vector<WorktreeChange> worktree_changes(git_repository* repo) {
  if (const char* workdir = git_repository_workdir(repo)) check_ignore_files(workdir);
  git_status_options opts = GIT_STATUS_OPTIONS_INIT;
  opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
               GIT_STATUS_OPT_EXCLUDE_SUBMODULES | GIT_STATUS_OPT_SORT_CASE_SENSITIVELY;
  git_status_list* raw = nullptr;
  check(git_status_list_new(&raw, repo, &opts), "cannot list the sandbox clone's changes");
  StatusList list(raw);
  std::vector<WorktreeChange> out;
  size_t n = git_status_list_entrycount(list.get());
  for (size_t i = 0; i < n; ++i) {
    const git_status_entry* e = git_status_byindex(list.get(), i);
    if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED)) continue;
    const git_diff_delta* d = e->index_to_workdir != nullptr ? e->index_to_workdir : e->head_to_index;
    if (d == nullptr) continue;
    const char* path = d->new_file.path != nullptr ? d->new_file.path : d->old_file.path;
    out.push_back({path, describe(e->status), static_cast<unsigned>(e->status)});
  }
  return out;
}

}  // namespace ksbox::git
