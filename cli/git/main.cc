// ksbox-git: the git half of `ksbox run` / `sync` / `stop` / `status`, run by
// the (static) `ksbox` binary because libgit2 only links dynamically here.
// Exit: 0 ok/synced/committed, 1 error, 2 nothing to sync/commit,
// 3 diverged or conflict (host untouched), 4 not a git repository.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/git/clone_confinement.h"
#include "cli/git/git_handles.h"
#include "cli/git/report.h"

namespace {

using namespace ksbox::git;

constexpr const char* kFooter =
    "Exit status: 0 done; 1 error; 2 nothing to sync (sync) or to commit (commit);\n"
    "3 diverged; the sync would overwrite uncommitted host changes; the host is detached, on another\n"
    "branch than the clone was made from, or mid-merge/rebase (in every case the host is left untouched);\n"
    "4 not a git repository. Usage errors exit 1.";

void print_json(const nlohmann::json& j) { fmt::print("{}\n", j.dump()); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ksbox-git: clones a project for a ksbox sandbox and syncs its commits back (used by ksbox)"};
  app.footer(kFooter);
  app.require_subcommand(1);
  bool json = false;
  app.add_flag("--json", json, "print one JSON object on stdout instead of text");

  CloneOptions clone_opts;
  std::optional<std::string> name, email;
  auto* clone = app.add_subcommand("clone", "clone the project (at the host's current branch) into --dest");
  clone->add_option("--project", clone_opts.project, "any path inside the project's work tree")->required();
  clone->add_option("--dest", clone_opts.dest, "where to clone (must not exist or be empty)")->required();
  clone->add_option("--name", name, "user.name for the clone (default: the project's)");
  clone->add_option("--email", email, "user.email for the clone (default: the project's)");

  SyncOptions sync_opts;
  auto* sync = app.add_subcommand("sync", "fast-forward the project's branch to the clone's commits");
  sync->add_option("--clone", sync_opts.clone, "the sandbox's clone")->required();
  sync->add_option("--project", sync_opts.project, "any path inside the project's work tree")->required();
  sync->add_flag("--dry-run", sync_opts.dry_run, "show the commits and diffstat; change nothing");
  sync->add_flag("--artifacts", sync_opts.artifacts,
                 "also copy dist/ build/ target/ .next/ out/ from the clone (after a sync, or when nothing to sync)");
  auto* ac = sync->add_flag("--auto-commit", sync_opts.auto_commit, "commit the clone's changes first");
  sync->add_option("--message", sync_opts.message, "message of the auto-commit")->needs(ac);

  std::string commit_clone;
  std::optional<std::string> commit_message;
  auto* commit = app.add_subcommand("commit", "commit all changes in the clone's work tree");
  commit->add_option("--clone", commit_clone, "the sandbox's clone")->required();
  commit->add_option("--message", commit_message, "commit message (default: ksbox: auto-commit N files)");

  std::string status_clone, status_project;
  auto* status = app.add_subcommand("status", "commits ahead/behind the project's branch, uncommitted files");
  status->add_option("--clone", status_clone, "the sandbox's clone")->required();
  status->add_option("--project", status_project, "any path inside the project's work tree")->required();

  for (auto* sub : {clone, sync, commit, status}) sub->add_flag("--json", json, "print one JSON object on stdout");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "ksbox: {}; see ksbox-git --help\n", e.what());
    return kExitError;
  }

  // Before the guest-written clone is touched (see clone_confinement.h).
  const std::string& clone_dir = *sync ? sync_opts.clone : *commit ? commit_clone : status_clone;
  if (!*clone) {
    std::error_code ec;
    auto root = std::filesystem::canonical(clone_dir, ec);
    if (!ec) {
      std::string why = confine_clone(root.string());
      if (!why.empty())
        fmt::print(stderr, "ksbox: warning: cannot keep symlinks in the sandbox clone from being followed ({}); "
                           "relying on checks alone\n",
                   why);
    }
  }

  Libgit2 lib;
  try {
    if (*clone) {
      clone_opts.name = name;
      clone_opts.email = email;
      CloneResult r = clone_project(clone_opts);
      json ? print_json(to_json(r)) : print_clone(r, clone_opts.dest, stdout);
      return kExitOk;
    }
    if (*sync) {
      SyncReport r = run_sync(sync_opts);
      json ? print_json(to_json(r)) : print_sync(r, stdout, stderr);
      return exit_code(r.decision);
    }
    if (*commit) {
      AutoCommitResult r = auto_commit(open_sandbox_clone(commit_clone), commit_message);
      json ? print_json(to_json(r)) : print_commit(r, stdout);
      return r.committed ? kExitOk : kExitNothing;
    }
    StatusReport r = sync_status(status_clone, status_project);
    json ? print_json(to_json(r)) : print_status(r, stdout);
    return kExitOk;
  } catch (const Failure& f) {
    fmt::print(stderr, "ksbox: {}\n", f.what());
    if (json) print_json({{"result", "error"}, {"message", f.what()}});
    return f.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "ksbox: {}\n", e.what());
    if (json) print_json({{"result", "error"}, {"message", e.what()}});
    return kExitError;
  }
}
