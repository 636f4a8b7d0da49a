#include "cli/git/report.h"

#include <algorithm>

#include <fmt/format.h>

namespace ksbox::git {
namespace {

using nlohmann::json;

json optional_string(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }
json nonempty_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string shorten(const std::optional<std::string>& id) { return id ? id->substr(0, 7) : "-"; }

std::string plural(size_t n, const char* word) { return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s"); }

void print_commits(const SyncReport& r, FILE* out) {
  for (const auto& c : r.commits) fmt::print(out, "  {} {}  {}\n", c.id, c.author, c.subject);
  if (r.commit_count > r.commits.size()) fmt::print(out, "  ... and {} more\n", r.commit_count - r.commits.size());
}

void print_uncommitted(const SyncReport& r, FILE* out) {
  if (r.uncommitted.empty()) return;
  fmt::print(out, "Not transferred (uncommitted in the sandbox; commit them there, or use --auto-commit):\n");
  for (size_t i = 0; i < std::min(r.uncommitted.size(), kMaxListedCommits); ++i)
    fmt::print(out, "  {:<10} {}\n", r.uncommitted[i].status, r.uncommitted[i].path);
  if (r.uncommitted.size() > kMaxListedCommits)
    fmt::print(out, "  ... and {} more\n", r.uncommitted.size() - kMaxListedCommits);
}

void print_artifacts(const SyncReport& r, FILE* out) {
  for (const auto& d : r.artifacts_would_copy) fmt::print(out, "Would copy artifacts: {}/\n", d);
  if (!r.artifacts) return;
  for (const auto& d : r.artifacts->copied)
    fmt::print(out, "Copied {}/: {}, {} bytes\n", d.dir, plural(d.files, "file"), d.bytes);
  for (const auto& s : r.artifacts->skipped) fmt::print(out, "  skipped {} ({})\n", s.path, s.reason);
  if (r.artifacts->skipped_count > r.artifacts->skipped.size())
    fmt::print(out, "  ... and {} more skipped\n", r.artifacts->skipped_count - r.artifacts->skipped.size());
}

}  // namespace

json to_json(const SyncReport& r) {
  json commits = json::array();
  for (const auto& c : r.commits) commits.push_back({{"id", c.id}, {"author", c.author}, {"subject", c.subject}});
  json uncommitted = json::array();
  // Lists are bounded (the guest decides how long they could be); the
  // *_count fields have the totals.
  for (size_t i = 0; i < std::min(r.uncommitted.size(), kMaxListedCommits); ++i)
    uncommitted.push_back({{"path", r.uncommitted[i].path}, {"status", r.uncommitted[i].status}});
  json artifacts = json::array();
  json skipped = json::array();
  if (r.artifacts) {
    for (const auto& d : r.artifacts->copied) artifacts.push_back({{"dir", d.dir}, {"files", d.files}, {"bytes", d.bytes}});
    for (const auto& s : r.artifacts->skipped) skipped.push_back({{"path", s.path}, {"reason", s.reason}});
  }
  json j = {{"result", result_name(r.decision)},
            {"dry_run", r.dry_run},
            {"branch", nonempty_or_null(r.branch)},
            {"clone_branch", nonempty_or_null(r.clone_branch)},
            {"from", optional_string(r.from)},
            {"to", optional_string(r.to)},
            {"commits", commits},
            {"commit_count", r.commit_count},
            {"files_changed", r.files_changed},
            {"insertions", r.insertions},
            {"deletions", r.deletions},
            {"conflicts", r.conflicts},
            {"uncommitted", uncommitted},
            {"uncommitted_count", r.uncommitted.size()},
            {"artifacts", artifacts},
            {"artifacts_skipped", skipped},
            {"artifacts_skipped_count", r.artifacts ? r.artifacts->skipped_count : 0},
            {"artifacts_would_copy", r.artifacts_would_copy}};
  if (r.auto_commit) j["auto_commit"] = to_json(*r.auto_commit);
  return j;
}

json to_json(const StatusReport& s) {
  return {{"branch", nonempty_or_null(s.branch)}, {"ahead", s.ahead}, {"behind", s.behind}, {"uncommitted", s.uncommitted}};
}

json to_json(const AutoCommitResult& c) {
  return {{"committed", c.committed},
          {"commit", nonempty_or_null(c.commit_id)},
          {"files", c.files},
          {"message", nonempty_or_null(c.message)},
          {"skipped", c.skipped}};
}

json to_json(const CloneResult& c) {
  return {{"branch", c.branch}, {"commit", c.commit}, {"name", nonempty_or_null(c.name)}, {"email", nonempty_or_null(c.email)}};
}

void print_sync(const SyncReport& r, FILE* out, FILE* err) {
  if (r.auto_commit) print_commit(*r.auto_commit, out);
  std::string stat = fmt::format("{} changed, {}(+), {}(-)", plural(r.files_changed, "file"),
                                 plural(r.insertions, "insertion"), plural(r.deletions, "deletion"));
  switch (r.decision) {
    case Decision::kFastForward:
      fmt::print(out, "{} {} into {} ({}..{}): {}\n", r.dry_run ? "Would sync" : "Synced", plural(r.commit_count, "commit"),
                 r.branch, shorten(r.from), shorten(r.to), stat);
      print_commits(r, out);
      break;
    case Decision::kNothing:
      fmt::print(out, "Nothing to sync: {} already has the sandbox's commits.\n", r.branch.empty() ? "the project" : r.branch);
      break;
    case Decision::kDiverged:
      fmt::print(out, "The sandbox has {} that {} does not ({}), but {} also has commits of its own:\n",
                 plural(r.commit_count, "commit"), r.branch, stat, r.branch);
      print_commits(r, out);
      fmt::print(err, "ksbox: {} and the sandbox have diverged; {} was left untouched. To finish by hand:\n", r.branch,
                 r.project);
      fmt::print(err, "  git -C {} fetch {} HEAD\n", r.project, r.clone);
      fmt::print(err, "  git -C {} merge FETCH_HEAD     # or: rebase FETCH_HEAD\n", r.project);
      break;
    case Decision::kConflict:
      fmt::print(out, "The sandbox has {} ({}) that would overwrite uncommitted changes in {}:\n",
                 plural(r.commit_count, "commit"), stat, r.project);
      for (const auto& p : r.conflicts) fmt::print(out, "  {}\n", p);
      fmt::print(err, "ksbox: sync would overwrite uncommitted changes in {}; nothing was changed. Commit or stash "
                      "them (git stash), then sync again\n",
                 r.project);
      break;
    case Decision::kHostNotOnBranch:
      fmt::print(err, "ksbox: {} is not on a branch with commits (HEAD detached or unborn); nothing was changed. "
                      "Check out the branch to sync into{}, then sync again\n",
                 r.project, r.clone_branch.empty() ? "" : fmt::format(" (git switch {})", r.clone_branch));
      break;
    case Decision::kWrongBranch:
      fmt::print(err, "ksbox: the sandbox was cloned from branch {}, but {} is on {}; nothing was changed. "
                      "Switch back (git switch {}), then sync again\n",
                 r.clone_branch, r.project, r.branch, r.clone_branch);
      break;
    case Decision::kHostBusy:
      fmt::print(err, "ksbox: {} is in the middle of a merge, rebase or similar; nothing was changed. "
                      "Finish or abort it, then sync again\n",
                 r.project);
      break;
  }
  print_uncommitted(r, out);
  print_artifacts(r, out);
}

void print_status(const StatusReport& s, FILE* out) {
  fmt::print(out, "{}: {} ahead, {} behind, {} uncommitted\n", s.branch.empty() ? "(detached)" : s.branch, s.ahead,
             s.behind, plural(s.uncommitted, "file"));
}

void print_commit(const AutoCommitResult& c, FILE* out) {
  if (c.committed)
    fmt::print(out, "Committed {} in the sandbox: {} \"{}\"\n", plural(c.files, "file"), c.commit_id.substr(0, 7), c.message);
  else
    fmt::print(out, "Nothing to commit in the sandbox.\n");
  for (const auto& s : c.skipped) fmt::print(out, "  not committed: {} (not a regular file or symlink)\n", s);
}

void print_clone(const CloneResult& c, const std::string& dest, FILE* out) {
  fmt::print(out, "Cloned {} ({}) into {}\n", c.branch, c.commit.substr(0, 7), dest);
}

}  // namespace ksbox::git
