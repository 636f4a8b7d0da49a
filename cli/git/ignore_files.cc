#include "cli/git/ignore_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "cli/git/git_handles.h"
#include "cli/git/safe_fs.h"

namespace ksbox::git {
namespace {

constexpr size_t kMaxIgnoreFile = 16u << 20;
// Deeper trees exceed PATH_MAX in libgit2's walk anyway.
constexpr size_t kMaxDepth = 1024;

[[noreturn]] void refuse(const std::string& worktree, const std::string& why) {
  throw Failure(kExitError, fmt::format("refusing the sandbox clone {}: {}; fix it inside the sandbox and retry",
                                        worktree, why));
}

void check_file(int dirfd, const std::string& name, const std::string& shown, const std::string& worktree) {
  // A symlink is screened through: without the confinement (which may be
  // unavailable) libgit2 follows it.
  Entry e = stat_entry(dirfd, name);
  if (e.kind != EntryKind::kRegular && e.kind != EntryKind::kSymlink) return;
  auto content = read_regular_file_followed(dirfd, name, kMaxIgnoreFile);
  if (!content) {
    if (errno == EFBIG) refuse(worktree, fmt::format("{} is larger than {} bytes", shown, kMaxIgnoreFile));
    return;  // not a regular file (libgit2 reads nothing either), or gone
  }
  if (ignore_rules_may_loop_libgit2(*content))
    refuse(worktree, fmt::format("{} contains a vertical tab or form feed, on which libgit2 loops forever", shown));
}

struct Level {
  DIR* dir;
  std::string rel;  // "" for the work tree root, else "a/b/"
};

}  // namespace

bool ignore_rules_may_loop_libgit2(std::string_view content) {
  return content.find_first_of("\v\f") != std::string_view::npos;
}

void check_ignore_files(const std::string& worktree) {
  UniqueFd root = open_directory(worktree);
  if (!root) refuse(worktree, fmt::format("cannot open it ({})", std::strerror(errno)));
  if (UniqueFd info = open_subdirectory(root.get(), {".git", "info"}))
    check_file(info.get(), "exclude", ".git/info/exclude", worktree);

  // Iterative depth-first walk; one open directory per level.
  std::vector<Level> stack;
  auto push = [&](UniqueFd fd, std::string rel) {
    if (stack.size() >= kMaxDepth) refuse(worktree, fmt::format("its tree is deeper than {} directories", kMaxDepth));
    DIR* d = ::fdopendir(fd.get());
    if (d == nullptr) return;
    (void)fd.release();
    stack.push_back({d, std::move(rel)});
  };
  struct CloseAll {
    std::vector<Level>& s;
    ~CloseAll() {
      for (auto& l : s) ::closedir(l.dir);
    }
  } close_all{stack};
  push(std::move(root), "");
  while (!stack.empty()) {
    Level& top = stack.back();
    errno = 0;
    dirent* ent = ::readdir(top.dir);
    if (ent == nullptr) {
      ::closedir(top.dir);
      stack.pop_back();
      continue;
    }
    const char* name = ent->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    // libgit2 treats any .git entry as a nested repository and does not enter it.
    if (strcasecmp(name, ".git") == 0) continue;
    const int dfd = ::dirfd(top.dir);
    if (std::strcmp(name, ".gitignore") == 0) {
      check_file(dfd, name, top.rel + name, worktree);
      continue;
    }
    if (ent->d_type != DT_DIR && ent->d_type != DT_UNKNOWN) continue;
    UniqueFd sub(::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) continue;  // not a directory, or a symlink: libgit2 does not descend either
    std::string rel = top.rel + name + "/";
    push(std::move(sub), std::move(rel));
  }
}

}  // namespace ksbox::git
