#include "cli/git/object_transfer.h"

#include <strings.h>

#include <cstring>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "cli/git/git_handles.h"

namespace ksbox::git {
namespace {

constexpr int kMaxTreeDepth = 1024;

struct OidHash {
  size_t operator()(const git_oid& id) const {
    size_t h;
    static_assert(sizeof(h) <= sizeof(id.id));
    std::memcpy(&h, id.id, sizeof h);
    return h;
  }
};
struct OidEq {
  bool operator()(const git_oid& a, const git_oid& b) const { return git_oid_equal(&a, &b) != 0; }
};
using OidSet = std::unordered_set<git_oid, OidHash, OidEq>;

class Transfer {
 public:
  Transfer(git_repository* clone, git_repository* project) : clone_(clone) {
    git_odb* a = nullptr;
    git_odb* b = nullptr;
    check(git_repository_odb(&a, clone), "clone object database");
    src_.reset(a);
    check(git_repository_odb(&b, project), "project object database");
    dst_.reset(b);
  }

  bool have(const git_oid& id) const { return git_odb_exists(dst_.get(), &id) != 0; }

  void copy_raw(const git_oid& id) {
    size_t size = 0;
    git_object_t type = GIT_OBJECT_INVALID;
    check(git_odb_read_header(&size, &type, src_.get(), &id), fmt::format("sandbox object {}", oid_str(id)));
    if (size > kMaxObjectBytes)
      throw Failure(kExitError, fmt::format("sandbox object {} is {} bytes, over the {} byte limit; remove it from "
                                            "the sandbox's history",
                                            oid_str(id), size, kMaxObjectBytes));
    git_odb_object* raw = nullptr;
    check(git_odb_read(&raw, src_.get(), &id), fmt::format("sandbox object {}", oid_str(id)));
    OdbObject obj(raw);
    git_oid written;
    check(git_odb_write(&written, dst_.get(), git_odb_object_data(obj.get()), git_odb_object_size(obj.get()),
                        git_odb_object_type(obj.get())),
          "writing into the project's object database");
    if (!git_oid_equal(&written, &id))
      throw Failure(kExitError, fmt::format("sandbox object {} is corrupt (hashes to {})", oid_str(id), oid_str(written)));
    ++written_;
  }

  void copy_tree(const git_oid& id, int depth) {
    if (have(id)) return;
    if (depth > kMaxTreeDepth) throw Failure(kExitError, "a sandbox tree is nested too deep");
    git_tree* raw = nullptr;
    check(git_tree_lookup(&raw, clone_, &id), fmt::format("sandbox tree {}", oid_str(id)));
    Tree tree(raw);
    std::set<std::string> names;
    size_t n = git_tree_entrycount(tree.get());
    for (size_t i = 0; i < n; ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(tree.get(), i);
      std::string name = git_tree_entry_name(e);
      // Names git refuses to check out: a tree smuggling them in could make
      // the host checkout write outside the work tree or into .git.
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
          strcasecmp(name.c_str(), ".git") == 0 || !names.insert(name).second)
        throw Failure(kExitError, fmt::format("sandbox tree {} has an invalid entry name '{}'", oid_str(id), name));
      const git_oid* child = git_tree_entry_id(e);
      switch (git_tree_entry_filemode(e)) {
        case GIT_FILEMODE_TREE:
          copy_tree(*child, depth + 1);
          break;
        case GIT_FILEMODE_BLOB:
        case GIT_FILEMODE_BLOB_EXECUTABLE:
        case GIT_FILEMODE_LINK:
          if (!have(*child)) copy_raw(*child);
          break;
        case GIT_FILEMODE_COMMIT:
          break;  // a submodule: its commits live elsewhere
        default:
          throw Failure(kExitError, fmt::format("sandbox tree {} has an invalid mode for '{}'", oid_str(id), name));
      }
    }
    copy_raw(id);
  }

  // The commits the project lacks, parents first.
  std::vector<git_oid> missing_commits(const git_oid& tip) {
    std::vector<git_oid> order;
    OidSet seen;
    struct Frame {
      git_oid id;
      bool expanded;
    };
    std::vector<Frame> stack{{tip, false}};
    while (!stack.empty()) {
      Frame f = stack.back();
      stack.pop_back();
      if (f.expanded) {
        order.push_back(f.id);
        continue;
      }
      if (seen.contains(f.id) || have(f.id)) continue;
      seen.insert(f.id);
      git_commit* raw = nullptr;
      check(git_commit_lookup(&raw, clone_, &f.id), fmt::format("sandbox commit {}", oid_str(f.id)));
      Commit c(raw);
      stack.push_back({f.id, true});
      for (unsigned i = 0; i < git_commit_parentcount(c.get()); ++i)
        stack.push_back({*git_commit_parent_id(c.get(), i), false});
    }
    return order;
  }

  void copy_commit(const git_oid& id) {
    git_commit* raw = nullptr;
    check(git_commit_lookup(&raw, clone_, &id), fmt::format("sandbox commit {}", oid_str(id)));
    Commit c(raw);
    copy_tree(*git_commit_tree_id(c.get()), 0);
    copy_raw(id);
  }

  size_t written() const { return written_; }

 private:
  git_repository* clone_;
  Odb src_;
  Odb dst_;
  size_t written_ = 0;
};

}  // namespace

size_t transfer_objects(git_repository* clone, git_repository* project, const git_oid& tip) {
  Transfer t(clone, project);
  for (const git_oid& id : t.missing_commits(tip)) t.copy_commit(id);
  return t.written();
}

}  // namespace ksbox::git
