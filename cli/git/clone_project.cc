#include "cli/git/clone_project.h"

#include <filesystem>

#include <fmt/format.h>

#include "cli/git/git_handles.h"
#include "cli/git/project_repo.h"

namespace ksbox::git {
CloneResult clone_project(const CloneOptions& o) {
  Project project = open_project(o.project);
  HostBranch head = host_branch(project.repo.get());
  if (head.head == HostHead::kDetached)
    throw Failure(kExitError, fmt::format("{} has a detached HEAD; check out a branch first (git switch <branch>)",
                                          project.workdir));
  if (head.head == HostHead::kUnborn || !head.tip)
    throw Failure(kExitError, fmt::format("branch {} of {} has no commits yet; commit first", head.name,
                                          project.workdir));

  CloneResult result{head.name, oid_str(*head.tip), o.name.value_or(""), o.email.value_or("")};
  git_config* raw_cfg = nullptr;
  check(git_repository_config_snapshot(&raw_cfg, project.repo.get()), "cannot read the project's git config");
  Config host_cfg(raw_cfg);
  if (!o.name) result.name = config_string(host_cfg.get(), "user.name");
  if (!o.email) result.email = config_string(host_cfg.get(), "user.email");

  // Objects behind alternates would stay outside the clone (and outside the
  // guest's view): let the transport pack what the branch needs instead.
  std::string commondir = git_repository_commondir(project.repo.get());
  bool has_alternates = std::filesystem::exists(commondir + "objects/info/alternates");

  git_clone_options opts = GIT_CLONE_OPTIONS_INIT;
  opts.checkout_branch = head.name.c_str();
  opts.local = has_alternates ? GIT_CLONE_NO_LOCAL : GIT_CLONE_LOCAL_NO_LINKS;
  opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_SAFE;
  git_repository* raw = nullptr;
  check(git_clone(&raw, commondir.c_str(), o.dest.c_str(), &opts),
        fmt::format("cannot clone {} into {}", project.workdir, o.dest));
  Repository clone(raw);

  git_config* raw_clone_cfg = nullptr;
  check(git_repository_config(&raw_clone_cfg, clone.get()), "the clone's config");
  Config clone_all(raw_clone_cfg);
  git_config* raw_local = nullptr;
  check(git_config_open_level(&raw_local, clone_all.get(), GIT_CONFIG_LEVEL_LOCAL), "the clone's config");
  Config local(raw_local);
  if (!result.name.empty()) check(git_config_set_string(local.get(), "user.name", result.name.c_str()), "user.name");
  if (!result.email.empty())
    check(git_config_set_string(local.get(), "user.email", result.email.c_str()), "user.email");
  check(git_config_set_string(local.get(), "ksbox.branch", head.name.c_str()), "ksbox.branch");
  return result;
}

}  // namespace ksbox::git
