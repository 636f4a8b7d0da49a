#include "git_test_repo.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli/git/clone_project.h"

namespace ksbox::git::test {

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "ksbox-git-test.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Repository open_repo(const fs::path& dir) {
  git_repository* raw = nullptr;
  check(git_repository_open(&raw, dir.c_str()), "test open");
  return Repository(raw);
}

Odb repo_odb(git_repository* repo) {
  git_odb* raw = nullptr;
  check(git_repository_odb(&raw, repo), "test odb");
  return Odb(raw);
}

void set_config(const fs::path& dir, const std::string& key, const std::string& value) {
  Repository repo = open_repo(dir);
  git_config* cfg = nullptr;
  check(git_repository_config(&cfg, repo.get()), "test config");
  Config c(cfg);
  check(git_config_set_string(c.get(), key.c_str(), value.c_str()), "test config");
}

void init_repo(const fs::path& dir, const std::string& name, const std::string& email, const std::string& branch) {
  git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  opts.flags = GIT_REPOSITORY_INIT_MKPATH;
  std::string head = "refs/heads/" + branch;
  opts.initial_head = head.c_str();
  git_repository* raw = nullptr;
  check(git_repository_init_ext(&raw, dir.c_str(), &opts), "test init");
  Repository repo(raw);
  if (name.empty()) return;
  set_config(dir, "user.name", name);
  set_config(dir, "user.email", email);
}

std::string commit_all(const fs::path& dir, const std::string& message) {
  Repository repo = open_repo(dir);
  git_index* raw_index = nullptr;
  check(git_repository_index(&raw_index, repo.get()), "test index");
  Index index(raw_index);
  git_strarray all{};
  check(git_index_add_all(index.get(), &all, GIT_INDEX_ADD_DEFAULT, nullptr, nullptr), "test add_all");
  check(git_index_update_all(index.get(), &all, nullptr, nullptr), "test update_all");
  check(git_index_write(index.get()), "test index write");
  git_oid tree_id;
  check(git_index_write_tree(&tree_id, index.get()), "test write tree");
  git_tree* raw_tree = nullptr;
  check(git_tree_lookup(&raw_tree, repo.get(), &tree_id), "test tree");
  Tree tree(raw_tree);
  git_signature* raw_sig = nullptr;
  check(git_signature_new(&raw_sig, "Test Author", "author@example.com", 1700000000, 0), "test sig");
  Signature sig(raw_sig);
  Commit parent;
  git_oid head_id;
  if (git_reference_name_to_id(&head_id, repo.get(), "HEAD") == 0) {
    git_commit* raw = nullptr;
    check(git_commit_lookup(&raw, repo.get(), &head_id), "test parent");
    parent.reset(raw);
  }
  const git_commit* parents[] = {parent.get()};
  git_oid id;
  check(git_commit_create(&id, repo.get(), "HEAD", sig.get(), sig.get(), nullptr, message.c_str(), tree.get(),
                          parent ? 1 : 0, parents),
        "test commit");
  return oid_str(id);
}

std::string head_commit(const fs::path& dir) { return ref_target(dir, "HEAD"); }

std::string ref_target(const fs::path& dir, const std::string& ref) {
  Repository repo = open_repo(dir);
  git_oid id;
  if (git_reference_name_to_id(&id, repo.get(), ref.c_str()) != 0) return "";
  return oid_str(id);
}

std::string config_value(const fs::path& dir, const std::string& key) {
  Repository repo = open_repo(dir);
  git_config* raw = nullptr;
  check(git_repository_config_snapshot(&raw, repo.get()), "test config");
  Config cfg(raw);
  const char* value = nullptr;
  if (git_config_get_string(&value, cfg.get(), key.c_str()) != 0) return "";
  return value;
}

std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  Repository repo = open_repo(dir);
  git_reference_iterator* raw_it = nullptr;
  check(git_reference_iterator_new(&raw_it, repo.get()), "test refs");
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, raw_it) == 0) {
    Reference r(ref);
    const git_oid* target = git_reference_target(r.get());
    out[std::string("ref:") + git_reference_name(r.get())] = target != nullptr ? oid_str(*target) : "";
  }
  git_reference_iterator_free(raw_it);
  out["HEAD"] = read_file(dir / ".git/HEAD");
  out["index"] = read_file(dir / ".git/index");
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_symlink())
      out["link:" + rel] = fs::read_symlink(it->path()).string();
    else if (it->is_regular_file())
      out["file:" + rel] = read_file(it->path());
    else
      out["dir:" + rel] = "";
  }
  return out;
}

size_t object_files(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / ".git/objects")) n += e.is_regular_file() ? 1 : 0;
  return n;
}

void GitFixture::SetUp() {
  // No host config may leak into the tests (the identity tests depend on it).
  for (int level : {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL})
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, config_home_.path().c_str());
}

void GitFixture::make_project_and_clone() {
  init_repo(project());
  write_file(project() / "README.md", "hello\n");
  write_file(project() / "src/main.c", "int main() { return 0; }\n");
  write_file(project() / ".gitignore", "*.log\nnode_modules/\n");
  commit_all(project(), "initial");
  clone_project({project().string(), clone().string(), std::nullopt, std::nullopt});
}

}  // namespace ksbox::git::test
