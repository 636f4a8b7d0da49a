#include "cli/git/auto_commit.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/git/object_transfer.h"
#include "cli/git/safe_fs.h"
#include "cli/git/worktree_changes.h"

namespace ksbox::git {
namespace {

constexpr unsigned kWorktreeChanged = GIT_STATUS_WT_NEW | GIT_STATUS_WT_MODIFIED | GIT_STATUS_WT_TYPECHANGE |
                                      GIT_STATUS_WT_RENAMED | GIT_STATUS_CONFLICTED;

void fill_stat(git_index_entry& e, const struct stat& st) {
  e.ctime.seconds = static_cast<int32_t>(st.st_ctim.tv_sec);
  e.ctime.nanoseconds = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  e.mtime.seconds = static_cast<int32_t>(st.st_mtim.tv_sec);
  e.mtime.nanoseconds = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  e.dev = static_cast<uint32_t>(st.st_dev);
  e.ino = static_cast<uint32_t>(st.st_ino);
  e.uid = st.st_uid;
  e.gid = st.st_gid;
}

enum class Staged { kAdded, kRemoved, kSkipped };

// Stages the work-tree version of `path`, read without following symlinks.
Staged stage_path(git_index* index, int rootfd, const std::string& path) {
  auto parts = split_relative_path(path);
  if (!parts) return Staged::kSkipped;
  std::string leaf = parts->back();
  parts->pop_back();
  UniqueFd dir = open_subdirectory(rootfd, *parts);
  Entry entry = dir ? stat_entry(dir.get(), leaf) : Entry{};
  if (entry.kind == EntryKind::kMissing) {
    if (!dir && errno != ENOENT && errno != ENOTDIR) return Staged::kSkipped;  // e.g. a symlinked parent
    if (git_index_get_bypath(index, path.c_str(), 0) == nullptr) return Staged::kSkipped;
    check(git_index_remove_bypath(index, path.c_str()), fmt::format("unstaging {}", path));
    return Staged::kRemoved;
  }
  git_index_entry e{};
  e.path = path.c_str();
  std::optional<std::string> content;
  struct stat st = entry.st;
  if (entry.kind == EntryKind::kSymlink) {
    content = read_symlink(dir.get(), leaf);
    e.mode = GIT_FILEMODE_LINK;
  } else if (entry.kind == EntryKind::kRegular) {
    content = read_regular_file(dir.get(), leaf, kMaxObjectBytes, &st);
    e.mode = (st.st_mode & S_IXUSR) ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
  }
  if (!content) return Staged::kSkipped;
  fill_stat(e, st);
  git_index_conflict_remove(index, path.c_str());  // the work-tree version resolves a conflict
  check(git_index_add_from_buffer(index, &e, content->data(), content->size()), fmt::format("staging {}", path));
  return Staged::kAdded;
}

}  // namespace

AutoCommitResult auto_commit(const SandboxClone& clone, const std::optional<std::string>& message) {
  AutoCommitResult result;
  git_repository* repo = clone.repo.get();
  std::optional<git_oid> head = clone_head_commit(clone);

  git_index* raw_index = nullptr;
  check(git_repository_index(&raw_index, repo), "cannot read the sandbox clone's index");
  Index index(raw_index);
  UniqueFd rootfd = open_directory(clone.root);
  if (!rootfd) throw Failure(kExitError, fmt::format("cannot open {}: {}", clone.root, std::strerror(errno)));

  for (const WorktreeChange& c : worktree_changes(repo)) {
    if (c.flags & GIT_STATUS_WT_DELETED) {
      check(git_index_remove_bypath(index.get(), c.path.c_str()), fmt::format("unstaging {}", c.path));
    } else if (c.flags & kWorktreeChanged) {
      if (stage_path(index.get(), rootfd.get(), c.path) == Staged::kSkipped) result.skipped.push_back(c.path);
    }
  }

  git_oid tree_id;
  check(git_index_write_tree(&tree_id, index.get()), "cannot write the sandbox clone's tree");
  git_tree* raw_tree = nullptr;
  check(git_tree_lookup(&raw_tree, repo, &tree_id), "tree lookup");
  Tree tree(raw_tree);
  Commit parent;
  Tree parent_tree;
  if (head) {
    git_commit* raw = nullptr;
    check(git_commit_lookup(&raw, repo, &*head), "the sandbox clone's HEAD commit");
    parent.reset(raw);
    git_tree* pt = nullptr;
    check(git_commit_tree(&pt, parent.get()), "the sandbox clone's HEAD tree");
    parent_tree.reset(pt);
    if (git_oid_equal(&tree_id, git_tree_id(parent_tree.get()))) return result;  // nothing to commit
  }

  git_diff* raw_diff = nullptr;
  check(git_diff_tree_to_tree(&raw_diff, repo, parent_tree.get(), tree.get(), nullptr), "diff");
  Diff diff(raw_diff);
  result.files = git_diff_num_deltas(diff.get());
  if (result.files == 0) return result;  // also: an unborn branch and an empty tree
  result.message = message ? *message
                           : fmt::format("ksbox: auto-commit {} file{}", result.files, result.files == 1 ? "" : "s");

  git_signature* raw_sig = nullptr;
  check(git_signature_now(&raw_sig, clone.identity.name.c_str(), clone.identity.email.c_str()),
        "the sandbox clone's user.name/user.email");
  Signature sig(raw_sig);
  const git_commit* parents[] = {parent.get()};
  git_oid commit_id;
  check(git_commit_create(&commit_id, repo, "HEAD", sig.get(), sig.get(), nullptr, result.message.c_str(), tree.get(),
                          head ? 1 : 0, parents),
        "cannot commit in the sandbox clone");
  check(git_index_write(index.get()), "cannot write the sandbox clone's index");
  result.committed = true;
  result.commit_id = oid_str(commit_id);
  return result;
}

}  // namespace ksbox::git
