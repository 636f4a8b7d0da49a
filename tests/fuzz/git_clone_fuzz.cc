// Fuzz target for the host side of the sandbox clone (cli/git): the guest
// writes the clone's git files, the host opens it for sync/commit/status.
//
// Input layout: byte 0 picks the file the guest controls (mod 8: .git/
// config, HEAD, packed-refs, refs/heads/main, info/exclude, index, then the
// work tree's .gitignore and sub/.gitignore); the rest is its new content.
// A fixed clone (one commit) is made once in a temp dir; each input
// overwrites that one file, runs open_sandbox_clone + clone_head_commit +
// worktree_changes, then restores the file.
// Invariants: only ksbox::git::Failure may be thrown (no crash, no other
// exception); a config with an [include]/[includeIf] section is always
// refused; split_relative_path never yields an empty, ".", ".." or ".git"
// component or one containing '/'.
#include <strings.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/git/git_handles.h"
#include "cli/git/safe_fs.h"
#include "cli/git/sandbox_clone.h"
#include "cli/git/worktree_changes.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace fs = std::filesystem;
using namespace ksbox::git;

constexpr std::array<const char*, 8> kFiles = {
    ".git/config", ".git/HEAD",  ".git/packed-refs", ".git/refs/heads/main", ".git/info/exclude",
    ".git/index",  ".gitignore", "sub/.gitignore"};

void write(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

struct Clone {
  Libgit2 lib;
  fs::path root;
  std::array<std::string, kFiles.size()> pristine;
  std::array<bool, kFiles.size()> existed{};

  Clone() {
    std::string tmpl = (fs::temp_directory_path() / "ksbox-git-fuzz.XXXXXX").string();
    CHECK(::mkdtemp(tmpl.data()) != nullptr);
    root = fs::path(tmpl) / "clone";
    git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
    opts.flags = GIT_REPOSITORY_INIT_MKPATH;
    opts.initial_head = "refs/heads/main";
    git_repository* raw = nullptr;
    CHECK(git_repository_init_ext(&raw, root.c_str(), &opts) == 0);
    Repository repo(raw);
    write(root / "a.txt", "a\n");
    git_index* raw_index = nullptr;
    CHECK(git_repository_index(&raw_index, repo.get()) == 0);
    Index index(raw_index);
    CHECK(git_index_add_bypath(index.get(), "a.txt") == 0);
    CHECK(git_index_write(index.get()) == 0);
    git_oid tree_id, commit_id;
    CHECK(git_index_write_tree(&tree_id, index.get()) == 0);
    git_tree* raw_tree = nullptr;
    CHECK(git_tree_lookup(&raw_tree, repo.get(), &tree_id) == 0);
    Tree tree(raw_tree);
    git_signature* raw_sig = nullptr;
    CHECK(git_signature_new(&raw_sig, "F", "f@x", 1700000000, 0) == 0);
    Signature sig(raw_sig);
    CHECK(git_commit_create(&commit_id, repo.get(), "HEAD", sig.get(), sig.get(), nullptr, "c", tree.get(), 0,
                            nullptr) == 0);
    write(root / "untracked.txt", "u\n");
    for (size_t i = 0; i < kFiles.size(); ++i) {
      fs::path p = root / kFiles[i];
      existed[i] = fs::exists(p);
      if (!existed[i]) continue;
      std::ifstream in(p, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      pristine[i] = ss.str();
    }
  }
  ~Clone() {
    std::error_code ec;
    fs::remove_all(root.parent_path(), ec);
  }
  void restore(size_t i) {
    fs::path p = root / kFiles[i];
    if (existed[i])
      write(p, pristine[i]);
    else
      fs::remove(p);
  }
};

void check_split(const std::string& path) {
  auto parts = split_relative_path(path);
  if (!parts) return;
  CHECK(!parts->empty());
  for (const auto& c : *parts) {
    CHECK(!c.empty() && c != "." && c != ".." && strcasecmp(c.c_str(), ".git") != 0);
    CHECK(c.find('/') == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Clone clone;
  if (size == 0) return 0;
  const size_t which = data[0] % kFiles.size();
  const std::string content(reinterpret_cast<const char*>(data + 1), size - 1);
  check_split(content);
  write(clone.root / kFiles[which], content);
  bool opened = false;
  try {
    SandboxClone c = open_sandbox_clone(clone.root.string());
    opened = true;
    clone_head_commit(c);
    worktree_changes(c.repo.get());
  } catch (const Failure&) {
  }
  if (which == 0 && config_has_include(content)) CHECK(!opened);
  clone.restore(which);
  return 0;
}
