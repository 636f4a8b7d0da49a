#include "cli/git/sandbox_clone.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <git2/sys/repository.h>

#include "cli/git/safe_fs.h"

namespace ksbox::git {
namespace {

constexpr size_t kMaxRefFile = 4096;
constexpr size_t kMaxConfig = 1 << 20;
constexpr size_t kMaxPackedRefs = 64u << 20;
constexpr size_t kMaxIndex = 1u << 30;
constexpr int kMaxSymrefDepth = 5;

[[noreturn]] void refuse(const std::string& gitdir, const std::string& why) {
  throw Failure(kExitError, fmt::format("refusing the sandbox clone {}: {}; destroy the sandbox and start afresh "
                                        "(ksbox destroy, ksbox run --fresh)",
                                        gitdir, why));
}

// A directory the clone needs to be a directory, never a symlink (which could
// point at a host repository or any host path).
void require_real_directory(int gitfd, const std::string& gitdir, const std::string& rel, bool must_exist) {
  auto parts = split_relative_path(rel);
  UniqueFd dir = open_subdirectory(gitfd, *parts);
  if (dir) return;
  Entry e = stat_entry(gitfd, rel);
  if (e.kind == EntryKind::kMissing && !must_exist) return;
  refuse(gitdir, fmt::format("{} is {}", rel, e.kind == EntryKind::kSymlink ? "a symlink" : "not a directory"));
}

// Files libgit2 reads whole: small regular files or absent.
void require_small_file(int gitfd, const std::string& gitdir, const std::string& rel, size_t limit,
                        bool must_exist, const std::string& shown_as = "") {
  Entry e = stat_entry(gitfd, rel);
  const std::string& name = shown_as.empty() ? rel : shown_as;
  if (e.kind == EntryKind::kMissing && !must_exist) return;
  if (e.kind != EntryKind::kRegular) refuse(gitdir, fmt::format("{} is not a regular file", name));
  if (static_cast<size_t>(e.st.st_size) > limit)
    refuse(gitdir, fmt::format("{} is {} bytes (limit {})", name, e.st.st_size, limit));
}

// libgit2 sizes its entry table by the count in the index's header: a
// made-up count would have it allocate gigabytes for a file of a few bytes.
// Every entry takes at least 62 bytes (stat data, object id, flags) before
// its path.
void require_plausible_index(int gitfd, const std::string& gitdir) {
  UniqueFd fd(::openat(gitfd, "index", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return;  // absent: checked by require_small_file
  struct stat st{};
  uint8_t hdr[12];
  if (::fstat(fd.get(), &st) != 0 || ::pread(fd.get(), hdr, sizeof hdr, 0) != static_cast<ssize_t>(sizeof hdr))
    return;  // too short to claim anything: libgit2 refuses it itself
  if (std::memcmp(hdr, "DIRC", 4) != 0) return;
  const uint64_t entries = uint64_t{hdr[8]} << 24 | uint64_t{hdr[9]} << 16 | uint64_t{hdr[10]} << 8 | hdr[11];
  constexpr uint64_t kMinEntry = 62;
  if (entries * kMinEntry > static_cast<uint64_t>(st.st_size) - sizeof hdr)
    refuse(gitdir, fmt::format("its index claims {} entries in {} bytes", entries, st.st_size));
}

// Layout and size checks.
void check_layout(const std::string& gitdir) {
  UniqueFd gitfd = open_directory(gitdir);
  if (!gitfd) {
    // A symlinked .git could point at the host repository itself; a .git
    // file (gitdir: ...) at any host path.
    refuse(gitdir, "it is not a directory (a symlink or gitfile?)");
  }
  for (const char* dir : {"objects", "refs"}) require_real_directory(gitfd.get(), gitdir, dir, true);
  for (const char* dir : {"objects/pack", "objects/info", "refs/heads", "refs/tags", "info", "logs"})
    require_real_directory(gitfd.get(), gitdir, dir, false);
  // Each of these makes libgit2 read objects or refs from another path.
  for (const char* redirect : {"commondir", "objects/info/alternates", "config.worktree"}) {
    if (stat_entry(gitfd.get(), redirect).kind != EntryKind::kMissing)
      refuse(gitdir, fmt::format("it has {}, which would make git read outside the clone", redirect));
  }
  require_small_file(gitfd.get(), gitdir, "HEAD", kMaxRefFile, true);
  require_small_file(gitfd.get(), gitdir, "packed-refs", kMaxPackedRefs, false);
  require_small_file(gitfd.get(), gitdir, "index", kMaxIndex, false);
  require_plausible_index(gitfd.get(), gitdir);
  require_small_file(gitfd.get(), gitdir, "info/exclude", kMaxConfig, false);
  require_small_file(gitfd.get(), gitdir, "config", kMaxConfig, false);
  auto config = read_regular_file(gitfd.get(), "config", kMaxConfig);
  // include.path / includeIf would make libgit2 read any host file (or block
  // on a FIFO) while opening the repository.
  if (config && config_has_include(*config)) refuse(gitdir, "its config has an [include] or [includeIf] section");
}

}  // namespace

// Leading blanks and a UTF-8 byte-order mark skipped, case-insensitive.
// Conservative: a value continued onto a line that looks like such a header
// also counts.
bool config_has_include(std::string_view config) {
  size_t pos = 0;
  while (pos < config.size()) {
    size_t end = config.find('\n', pos);
    if (end == std::string_view::npos) end = config.size();
    std::string_view line = config.substr(pos, end - pos);
    pos = end + 1;
    size_t i = line.find_first_not_of(" \t\r\v\f\xEF\xBB\xBF");
    if (i == std::string_view::npos || line[i] != '[') continue;
    i = line.find_first_not_of(" \t", i + 1);
    if (i != std::string_view::npos && line.size() - i >= 7 && strncasecmp(line.data() + i, "include", 7) == 0)
      return true;
  }
  return false;
}

void check_ref_file(const std::string& gitdir, const std::string& refname) {
  if (refname.rfind("refs/", 0) != 0) refuse(gitdir, fmt::format("HEAD points outside refs/ ({})", refname));
  auto parts = split_relative_path(refname);
  if (!parts) refuse(gitdir, fmt::format("bad ref name {}", refname));
  std::string leaf = parts->back();
  parts->pop_back();
  UniqueFd gitfd = open_directory(gitdir);
  if (!gitfd) refuse(gitdir, "it is not a directory");
  UniqueFd dir = open_subdirectory(gitfd.get(), *parts);
  if (!dir) {
    if (errno == ENOENT) return;  // no loose ref: packed or unborn
    refuse(gitdir, fmt::format("a directory on the way to {} is a symlink or not a directory", refname));
  }
  require_small_file(dir.get(), gitdir, leaf, kMaxRefFile, false, refname);
}

SandboxClone open_sandbox_clone(const std::string& dir) {
  SandboxClone clone;
  // The clone's own directory lies in ksbox's state directory (the guest
  // sees only what is inside it), so resolving its path is safe.
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::canonical(dir, ec);
  if (ec || !open_directory(canonical.string()))
    throw Failure(kExitError, fmt::format("the sandbox clone {} is missing or not a directory ({}); "
                                          "run `ksbox run --fresh` to make a new one",
                                          dir, ec ? ec.message() : std::strerror(errno)));
  clone.root = canonical.string();
  clone.gitdir = clone.root + "/.git";
  check_layout(clone.gitdir);

  git_repository* raw = nullptr;
  // NO_SEARCH: never walk up into a host repository; BARE: ignore
  // core.worktree (which could name any host directory).
  check(git_repository_open_ext(&raw, clone.gitdir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE,
                                nullptr),
        fmt::format("cannot open the sandbox clone {}", clone.root));
  clone.repo.reset(raw);
  // libgit2 resolved the path with realpath(): had .git been swapped for a
  // symlink after check_layout, this is where it would show.
  if (std::string(git_repository_path(clone.repo.get())) != clone.gitdir + "/")
    refuse(clone.gitdir, fmt::format("it resolved to {}", git_repository_path(clone.repo.get())));

  // Identity from the config as loaded (the clone's, else the host user's
  // global one); then replace the config so nothing else in it has effect.
  git_config* loaded = nullptr;
  if (git_repository_config_snapshot(&loaded, clone.repo.get()) == 0) {
    Config cfg(loaded);
    clone.identity = {config_string(cfg.get(), "user.name"), config_string(cfg.get(), "user.email")};
    clone.branch = config_string(cfg.get(), "ksbox.branch");
  }
  if (clone.identity.name.empty()) clone.identity.name = "ksbox";
  if (clone.identity.email.empty()) clone.identity.email = "ksbox@localhost";
  git_config* empty = nullptr;
  check(git_config_new(&empty), "git_config_new");
  Config empty_cfg(empty);
  check(git_repository_set_config(clone.repo.get(), empty_cfg.get()), "git_repository_set_config");
  check(git_repository_set_workdir(clone.repo.get(), clone.root.c_str(), 0), "git_repository_set_workdir");
  return clone;
}

std::optional<git_oid> clone_head_commit(const SandboxClone& clone) {
  std::string name = "HEAD";
  for (int depth = 0; depth <= kMaxSymrefDepth; ++depth) {
    if (name != "HEAD") check_ref_file(clone.gitdir, name);
    git_reference* raw = nullptr;
    int rc = git_reference_lookup(&raw, clone.repo.get(), name.c_str());
    if (rc == GIT_ENOTFOUND) return std::nullopt;  // unborn branch
    check(rc, fmt::format("cannot read {} in the sandbox clone", name));
    Reference ref(raw);
    if (git_reference_type(ref.get()) == GIT_REFERENCE_SYMBOLIC) {
      name = git_reference_symbolic_target(ref.get());
      continue;
    }
    git_object* obj = nullptr;
    check(git_reference_peel(&obj, ref.get(), GIT_OBJECT_COMMIT),
          fmt::format("the sandbox clone's {} is not a commit", name));
    Object peeled(obj);
    return *git_object_id(peeled.get());
  }
  refuse(clone.gitdir, "HEAD is a chain of too many symbolic refs");
}

}  // namespace ksbox::git
