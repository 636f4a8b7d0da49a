#include "cli/git/project_repo.h"

#include <fmt/format.h>

namespace ksbox::git {

Project open_project(const std::string& path) {
  git_buf found = GIT_BUF_INIT;
  int rc = git_repository_discover(&found, path.c_str(), 0, nullptr);
  std::string gitdir = rc == 0 ? std::string(found.ptr, found.size) : "";
  git_buf_dispose(&found);
  if (rc == GIT_ENOTFOUND)
    throw Failure(kExitNotARepo, fmt::format("{} is not in a git repository; run ksbox in a git project "
                                             "(or `git init` and commit first)",
                                             path));
  check(rc, fmt::format("cannot look for a git repository at {}", path));
  git_repository* raw = nullptr;
  check(git_repository_open_ext(&raw, gitdir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr),
        fmt::format("cannot open the git repository of {}", path));
  Project p{Repository(raw), ""};
  const char* wd = git_repository_workdir(p.repo.get());
  if (wd == nullptr)
    throw Failure(kExitNotARepo,
                  fmt::format("{} is a bare git repository; run ksbox in a checked-out work tree", path));
  p.workdir = wd;
  while (p.workdir.size() > 1 && p.workdir.back() == '/') p.workdir.pop_back();
  return p;
}

HostBranch host_branch(git_repository* repo) {
  HostBranch b;
  git_reference* raw = nullptr;
  check(git_reference_lookup(&raw, repo, "HEAD"), "cannot read the project's HEAD");
  Reference head(raw);
  if (git_reference_type(head.get()) != GIT_REFERENCE_SYMBOLIC) {
    b.head = HostHead::kDetached;
    b.tip = *git_reference_target(head.get());
    return b;
  }
  b.ref = git_reference_symbolic_target(head.get());
  b.name = b.ref.rfind("refs/heads/", 0) == 0 ? b.ref.substr(11) : b.ref;
  git_reference* resolved = nullptr;
  int rc = git_reference_resolve(&resolved, head.get());
  if (rc == GIT_ENOTFOUND) {
    b.head = HostHead::kUnborn;
    return b;
  }
  check(rc, "cannot resolve the project's HEAD");
  Reference r(resolved);
  git_object* obj = nullptr;
  check(git_reference_peel(&obj, r.get(), GIT_OBJECT_COMMIT), "the project's HEAD is not a commit");
  Object peeled(obj);
  b.tip = *git_object_id(peeled.get());
  return b;
}

}  // namespace ksbox::git
