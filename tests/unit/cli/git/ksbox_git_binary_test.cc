// The real `ksbox-git` binary end to end: exit statuses, stdout/stderr, and
// the --json shape the `ksbox` CLI parses.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "git_test_repo.h"
#include "tests/unit/cli/cli_process.h"

namespace ksbox::git::test {
namespace {

using cli::testing::CliProcess;
using cli::testing::CliRun;
using nlohmann::json;

class KsboxGitBinaryTest : public GitFixture {
 protected:
  CliRun run(std::vector<std::string> args) {
    // An empty HOME: no global git config of the machine's user.
    std::vector<std::string> env = {"HOME=" + config_home_.path().string(),
                                    "XDG_CONFIG_HOME=" + config_home_.path().string(), "PATH=/usr/bin:/bin"};
    CliProcess p({.args = std::move(args), .env = env});
    CliRun r = p.wait(std::chrono::seconds(30));
    EXPECT_FALSE(r.timed_out);
    return r;
  }
  std::vector<std::string> sync_args(std::vector<std::string> extra) {
    std::vector<std::string> a = {"sync", "--clone", clone().string(), "--project", project().string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

TEST_F(KsboxGitBinaryTest, CloneSyncStatusCommitExitCodesAndJson) {
  init_repo(project());
  write_file(project() / "a.txt", "a\n");
  std::string base = commit_all(project(), "initial");

  CliRun r = run({"clone", "--project", project().string(), "--dest", clone().string(), "--json"});
  ASSERT_EQ(r.status(), 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["branch"], "main");
  EXPECT_EQ(j["commit"], base);
  EXPECT_EQ(j["name"], "Host User");

  r = run(sync_args({}));
  EXPECT_EQ(r.status(), 2) << r.err;
  EXPECT_NE(r.out.find("Nothing to sync"), std::string::npos) << r.out;

  write_file(clone() / "a.txt", "from the sandbox\n");
  write_file(clone() / "wip.txt", "uncommitted\n");
  // A symlink is committed as one even though the clone is confined
  // (nosymfollow: readlink still works).
  fs::create_symlink("/etc/passwd", clone() / "link");
  r = run({"commit", "--clone", clone().string(), "--message", "agent work"});
  EXPECT_EQ(r.status(), 0) << r.err;
  EXPECT_EQ(r.err, "");  // confined without a warning
  r = run({"commit", "--clone", clone().string()});
  EXPECT_EQ(r.status(), 2) << r.err;  // nothing left to commit
  write_file(clone() / "later.txt", "uncommitted\n");

  r = run({"status", "--clone", clone().string(), "--project", project().string(), "--json"});
  ASSERT_EQ(r.status(), 0) << r.err;
  EXPECT_EQ(json::parse(r.out), json::parse(R"({"branch":"main","ahead":1,"behind":0,"uncommitted":1})"));

  r = run(sync_args({"--dry-run", "--json"}));
  EXPECT_EQ(r.status(), 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["result"], "synced");
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(head_commit(project()), base);

  r = run(sync_args({"--json"}));
  EXPECT_EQ(r.status(), 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["result"], "synced");
  EXPECT_EQ(j["from"], base);
  EXPECT_EQ(j["to"], head_commit(clone()));
  ASSERT_EQ(j["commits"].size(), 1u);
  EXPECT_EQ(j["commits"][0]["subject"], "agent work");
  EXPECT_EQ(j["commits"][0]["author"], "Host User");
  EXPECT_EQ(j["commits"][0]["id"].get<std::string>().size(), 7u);
  EXPECT_EQ(j["files_changed"], 3);
  EXPECT_EQ(j["insertions"], 3);
  EXPECT_EQ(j["deletions"], 1);
  EXPECT_EQ(j["uncommitted"], json::parse(R"([{"path":"later.txt","status":"untracked"}])"));
  EXPECT_TRUE(j["artifacts"].is_array());
  EXPECT_EQ(head_commit(project()), head_commit(clone()));
  EXPECT_FALSE(fs::exists(project() / "later.txt"));
  EXPECT_EQ(fs::read_symlink(project() / "link"), "/etc/passwd");
}

TEST_F(KsboxGitBinaryTest, DivergedIsExit3WithCommandsToFinishByHand) {
  make_project_and_clone();
  write_file(clone() / "README.md", "sandbox\n");
  commit_all(clone(), "sandbox");
  write_file(project() / "host.txt", "host\n");
  commit_all(project(), "host");
  CliRun r = run(sync_args({}));
  EXPECT_EQ(r.status(), 3);
  EXPECT_EQ(r.err.rfind("ksbox: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("git -C " + project().string() + " fetch " + clone().string() + " HEAD"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("merge FETCH_HEAD"), std::string::npos) << r.err;
  r = run(sync_args({"--json"}));
  EXPECT_EQ(r.status(), 3);
  EXPECT_EQ(json::parse(r.out)["result"], "diverged");
}

TEST_F(KsboxGitBinaryTest, ErrorsAreOneLinersWithTheirExitCode) {
  fs::create_directories(tmp_.path() / "plain");
  CliRun r = run({"clone", "--project", (tmp_.path() / "plain").string(), "--dest", clone().string()});
  EXPECT_EQ(r.status(), 4);
  EXPECT_EQ(r.err.rfind("ksbox: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("not in a git repository"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");

  make_project_and_clone();
  fs::remove_all(clone() / ".git");
  fs::create_directory_symlink(project() / ".git", clone() / ".git");
  r = run(sync_args({"--json"}));
  EXPECT_EQ(r.status(), 1);
  EXPECT_EQ(json::parse(r.out)["result"], "error");
  EXPECT_NE(r.err.find("refusing the sandbox clone"), std::string::npos) << r.err;

  r = run({"sync", "--clone", clone().string()});  // --project missing
  EXPECT_EQ(r.status(), 1);
  EXPECT_EQ(r.err.rfind("ksbox: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace ksbox::git::test
