#include "cli/git/sync.h"

#include <fmt/format.h>

#include "cli/git/object_transfer.h"
#include "cli/git/project_repo.h"
#include "cli/git/sandbox_clone.h"

namespace ksbox::git {
namespace {

// Makes the clone's objects readable through the project's handle without
// writing anything into the project (in-memory alternate). The clone has
// been checked to have no alternates of its own.
void read_clone_objects_in_memory(git_repository* project, const SandboxClone& clone) {
  git_odb* raw = nullptr;
  check(git_repository_odb(&raw, project), "project object database");
  Odb odb(raw);
  check(git_odb_add_disk_alternate(odb.get(), (clone.gitdir + "/objects").c_str()),
        "cannot read the sandbox clone's objects");
}

Commit lookup_commit(git_repository* repo, const git_oid& id) {
  git_commit* raw = nullptr;
  check(git_commit_lookup(&raw, repo, &id), fmt::format("commit {}", oid_str(id)));
  return Commit(raw);
}

Tree commit_tree(git_commit* c) {
  git_tree* raw = nullptr;
  check(git_commit_tree(&raw, c), "commit tree");
  return Tree(raw);
}

bool descends(git_repository* repo, const git_oid& commit, const git_oid& ancestor) {
  int rc = git_graph_descendant_of(repo, &commit, &ancestor);
  check(rc, "ancestry");
  return rc == 1;
}

void list_commits(git_repository* repo, const git_oid& tip, const std::optional<git_oid>& hide, SyncReport& r) {
  git_revwalk* raw = nullptr;
  check(git_revwalk_new(&raw, repo), "revwalk");
  Revwalk walk(raw);
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  check(git_revwalk_push(walk.get(), &tip), "revwalk");
  if (hide) check(git_revwalk_hide(walk.get(), &*hide), "revwalk");
  git_oid id;
  while (git_revwalk_next(&id, walk.get()) == 0) {
    if (++r.commit_count > kMaxListedCommits) continue;
    Commit c = lookup_commit(repo, id);
    const char* subject = git_commit_summary(c.get());
    r.commits.push_back({short_id(id), git_commit_author(c.get())->name, subject != nullptr ? subject : ""});
  }
}

// Diffstat of what the clone adds on top of the common ancestor.
void diffstat(git_repository* repo, const git_oid& host_tip, const git_oid& clone_tip, SyncReport& r) {
  Tree base_tree;
  git_oid base;
  int rc = git_merge_base(&base, repo, &host_tip, &clone_tip);
  if (rc != GIT_ENOTFOUND) {
    check(rc, "merge base");
    base_tree = commit_tree(lookup_commit(repo, base).get());
  }
  Tree tip_tree = commit_tree(lookup_commit(repo, clone_tip).get());
  git_diff* raw = nullptr;
  check(git_diff_tree_to_tree(&raw, repo, base_tree.get(), tip_tree.get(), nullptr), "diff");
  Diff diff(raw);
  git_diff_stats* raw_stats = nullptr;
  check(git_diff_get_stats(&raw_stats, diff.get()), "diffstat");
  DiffStats stats(raw_stats);
  r.files_changed = git_diff_stats_files_changed(stats.get());
  r.insertions = git_diff_stats_insertions(stats.get());
  r.deletions = git_diff_stats_deletions(stats.get());
}

int collect_conflict(git_checkout_notify_t, const char* path, const git_diff_file*, const git_diff_file*,
                     const git_diff_file*, void* payload) {
  auto* paths = static_cast<std::vector<std::string>*>(payload);
  if (paths->size() < kMaxListedCommits) paths->push_back(path);
  return 0;
}

// Safe checkout of `target` over the host work tree; with dry_run only finds
// the paths where uncommitted host changes are in the way. Returns false on
// such a conflict (nothing written).
bool checkout(git_repository* repo, git_commit* target, git_tree* baseline, bool dry_run,
              std::vector<std::string>* conflicts) {
  git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
  co.checkout_strategy = GIT_CHECKOUT_SAFE | GIT_CHECKOUT_DONT_OVERWRITE_IGNORED | (dry_run ? GIT_CHECKOUT_DRY_RUN : 0);
  co.baseline = baseline;
  co.notify_flags = GIT_CHECKOUT_NOTIFY_CONFLICT;
  co.notify_cb = collect_conflict;
  co.notify_payload = conflicts;
  int rc = git_checkout_tree(repo, reinterpret_cast<git_object*>(target), &co);
  if (rc == GIT_ECONFLICT) return false;
  check(rc, "cannot check the synced commit out in the project");
  return true;
}

void fast_forward(git_repository* repo, const HostBranch& host, const git_oid& clone_tip, SyncReport& r) {
  Commit host_commit = lookup_commit(repo, *host.tip);
  Tree host_tree = commit_tree(host_commit.get());
  Commit target = lookup_commit(repo, clone_tip);
  if (!checkout(repo, target.get(), host_tree.get(), false, &r.conflicts)) {
    r.decision = Decision::kConflict;  // the host work tree changed since the dry run
    return;
  }
  git_reference* raw = nullptr;
  // Compare-and-swap: fails if the branch moved since we read it.
  int rc = git_reference_create_matching(&raw, repo, host.ref.c_str(), &clone_tip, 1, &*host.tip,
                                         "ksbox sync: fast-forward");
  if (rc < 0) {
    std::string message = git_error_last() != nullptr ? git_error_last()->message : "unknown error";
    Tree target_tree = commit_tree(target.get());
    std::vector<std::string> ignored;
    checkout(repo, host_commit.get(), target_tree.get(), false, &ignored);
    throw Failure(kExitError, fmt::format("cannot move {} (did it change meanwhile?): {}; sync again", host.name, message));
  }
  Reference moved(raw);
}

}  // namespace

SyncReport run_sync(const SyncOptions& o) {
  SyncReport r;
  r.dry_run = o.dry_run;
  Project project = open_project(o.project);
  git_repository* repo = project.repo.get();
  r.project = project.workdir;
  SandboxClone clone = open_sandbox_clone(o.clone);
  r.clone = clone.root;
  if (o.auto_commit && !o.dry_run) r.auto_commit = auto_commit(clone, o.message);
  r.uncommitted = worktree_changes(clone.repo.get());

  HostBranch host = host_branch(repo);
  r.branch = host.head == HostHead::kDetached ? "" : host.name;
  if (host.tip) r.from = oid_str(*host.tip);
  std::optional<git_oid> clone_tip = clone_head_commit(clone);
  r.clone_branch = clone.branch;
  SyncFacts facts{.host_head = host.head,
                  .host_tip = r.from.value_or(""),
                  .host_operation_in_progress = git_repository_state(repo) != GIT_REPOSITORY_STATE_NONE,
                  .branch_mismatch = !clone.branch.empty() && host.head == HostHead::kBranch &&
                                     clone.branch != host.name};
  if (clone_tip) {
    r.to = facts.clone_tip = oid_str(*clone_tip);
    // Decide with the clone's objects visible in memory only: unless the
    // sync goes ahead, nothing at all is written to the project.
    read_clone_objects_in_memory(repo, clone);
    if (host.head == HostHead::kBranch) {
      facts.clone_is_ancestor_of_host = descends(repo, *host.tip, *clone_tip);
      facts.host_is_ancestor_of_clone = descends(repo, *clone_tip, *host.tip);
      bool same = git_oid_equal(&*host.tip, &*clone_tip) != 0;
      if (!same && !facts.clone_is_ancestor_of_host) {
        list_commits(repo, *clone_tip, host.tip, r);
        diffstat(repo, *host.tip, *clone_tip, r);
      }
      if (facts.host_is_ancestor_of_clone && !same) {
        Commit target = lookup_commit(repo, *clone_tip);
        Tree host_tree = commit_tree(lookup_commit(repo, *host.tip).get());
        facts.checkout_would_conflict = !checkout(repo, target.get(), host_tree.get(), true, &r.conflicts);
      }
    }
  }
  r.decision = decide(facts);
  if (r.decision == Decision::kFastForward && !o.dry_run) {
    // A fresh handle without the in-memory alternate: from here on the
    // project reads only objects that passed transfer_objects' checks.
    Project target = open_project(project.workdir);
    transfer_objects(clone.repo.get(), target.repo.get(), *clone_tip);
    git_reference* raw = nullptr;
    check(git_reference_create(&raw, target.repo.get(), kSyncRef, &*clone_tip, 1, "ksbox sync: from the sandbox"),
          fmt::format("cannot write {}", kSyncRef));
    Reference keep(raw);
    fast_forward(target.repo.get(), host, *clone_tip, r);
  }

  bool artifacts_apply = r.decision == Decision::kFastForward || r.decision == Decision::kNothing;
  if (o.artifacts && artifacts_apply) {
    if (o.dry_run)
      r.artifacts_would_copy = present_artifact_dirs(clone.root);
    else
      r.artifacts = copy_artifacts(clone.root, project.workdir);
  }
  return r;
}

StatusReport sync_status(const std::string& clone_dir, const std::string& project_dir) {
  StatusReport s;
  Project project = open_project(project_dir);
  SandboxClone clone = open_sandbox_clone(clone_dir);
  HostBranch host = host_branch(project.repo.get());
  s.branch = host.head == HostHead::kDetached ? "" : host.name;
  s.uncommitted = worktree_changes(clone.repo.get()).size();
  std::optional<git_oid> clone_tip = clone_head_commit(clone);
  if (clone_tip && host.tip) {
    read_clone_objects_in_memory(project.repo.get(), clone);
    check(git_graph_ahead_behind(&s.ahead, &s.behind, project.repo.get(), &*clone_tip, &*host.tip),
          "cannot compare the sandbox clone with the project");
  }
  return s;
}

}  // namespace ksbox::git
