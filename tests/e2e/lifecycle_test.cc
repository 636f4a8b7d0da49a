// End to end: the ksbox CLI's sandbox lifecycle on temp git projects —
// run, exec, sync, stop, status, list, destroy, crash recovery, --fresh —
// with the real ksbox-vmm (inside the nested harness when the host has no
// /dev/kvm). The guest is the test image (it has git), booted with
// `--image initramfs`: root-disk boots take minutes in L1 (root_disk_test.cc
// covers them).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/control_client.h"
#include "tests/e2e/process.h"
#include "tests/e2e/sandbox.h"
#include "tests/e2e/tmux.h"

namespace ksbox::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0)
        << "no usable /dev/kvm: run this test through tests/nested/with-kvm (ctest does)";
    // Sockets cannot live on the harness's 9p root: everything under /tmp.
    root_ = fs::path("/tmp") / ("ksbox-life-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "guest");
    const fs::path guest = KSBOX_GUEST_DIR;
    ASSERT_TRUE(fs::exists(guest / "initramfs-test.cpio.gz")) << "build the guest image: scripts/build.sh";
    fs::create_symlink(guest / "vmlinux", root_ / "guest/vmlinux");
    fs::create_symlink(guest / "initramfs-test.cpio.gz", root_ / "guest/initramfs.cpio.gz");
    ::setenv("KSBOX_GUEST_DIR", (root_ / "guest").c_str(), 1);
    ::setenv("XDG_STATE_HOME", (root_ / "state").c_str(), 1);
  }
  void TearDown() override {
    // Whatever a failed test left running.
    for (const auto& n : started_) ksbox({"destroy", "--force", n});
    fs::remove_all(root_);
  }

  ProcessResult ksbox(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(240)) {
    return run_ksbox(std::move(args), timeout);
  }
  ProcessResult git(const fs::path& repo, std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/git", "-C", repo.string(), "-c", "user.name=Host", "-c", "user.email=h@x"});
    return run_process(args);
  }
  std::string head(const fs::path& repo) { return git(repo, {"rev-parse", "HEAD"}).out; }

  // A git project with one commit, and the identity ksbox propagates.
  fs::path make_project(const std::string& name) {
    const fs::path p = root_ / name;
    fs::create_directories(p);
    EXPECT_EQ(git(p, {"init", "-q", "-b", "main"}).exit_code, 0);
    EXPECT_EQ(git(p, {"config", "user.name", "Host User"}).exit_code, 0);
    EXPECT_EQ(git(p, {"config", "user.email", "host@example.com"}).exit_code, 0);
    std::ofstream(p / "README") << "hello\n";
    EXPECT_EQ(git(p, {"add", "README"}).exit_code, 0);
    EXPECT_EQ(git(p, {"commit", "-qm", "init"}).exit_code, 0);
    return p;
  }
  // Boots the project's sandbox detached; one vCPU (see fs_test.cc).
  void start(const fs::path& project, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"run",  project.string(), "--no-attach", "--vcpus", "1", "--memory", "768",
                                  "--image", "initramfs"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = ksbox(args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    started_.push_back(project.filename());
  }
  ProcessResult guest(const std::string& name, const std::string& script) {
    return ksbox({"exec", name, "--", "sh", "-c", script});
  }
  json status(const std::string& name) {
    const auto r = ksbox({"status", name, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }
  // No process, socket or directory of the sandbox is left.
  void expect_gone(const std::string& name, pid_t vmm) {
    EXPECT_FALSE(fs::exists(root_ / "state/ksbox" / name));
    EXPECT_NE(::kill(vmm, 0), 0) << "the VMM still runs";
  }

  fs::path root_;
  std::vector<std::string> started_;
};


constexpr const char* kCommitInGuest =
    "cd /workspace && git config user.name >/dev/null && echo agent > agent.txt && git add agent.txt && "
    "git commit -qm 'agent work' && git log -1 --format=%an";

TEST_F(LifecycleTest, RunExecSyncStopDestroy) {
  const fs::path proj = make_project("alpha");
  start(proj);
  EXPECT_EQ(status("alpha")["state"], "running");
  const pid_t vmm = status("alpha")["pid"].get<pid_t>();

  // The default network: rootless user-mode, configured by the agent.
  auto r = guest("alpha", "test -e /sys/class/net/eth0 && grep -c nameserver /etc/resolv.conf");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // The guest works on a clone, commits carry the host user's identity.
  r = guest("alpha", kCommitInGuest);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "Host User\n");
  EXPECT_FALSE(fs::exists(proj / "agent.txt")) << "the guest wrote the host repository";

  // The pause sync uses: the guest does not run until the lease ends.
  const fs::path ctl = root_ / "state/ksbox/alpha/ctl.sock";
  EXPECT_EQ(control_request(ctl, {{"cmd", "pause"}, {"lease_ms", 4000}})["ok"], true);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ksbox({"exec", "alpha", "--connect-timeout", "1", "--", "true"}).exit_code, 255) << "paused";
  r = ksbox({"exec", "alpha", "--", "true"});  // served once the lease is over
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));

  // --dry-run shows the commit and changes nothing.
  const std::string before = head(proj);
  r = ksbox({"sync", "alpha", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("agent work"), std::string::npos) << r.out;
  EXPECT_EQ(head(proj), before);

  // An uncommitted guest file is listed, not copied; --artifacts copies dist/.
  ASSERT_EQ(guest("alpha", "echo draft > /workspace/draft.txt && mkdir -p /workspace/dist && "
                           "echo built > /workspace/dist/app.js").exit_code, 0);
  r = ksbox({"sync", "alpha", "--artifacts"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(proj / "agent.txt"), "agent\n");
  EXPECT_NE(head(proj), before);
  EXPECT_NE((r.out + r.err).find("draft.txt"), std::string::npos) << r.out << r.err;
  EXPECT_FALSE(fs::exists(proj / "draft.txt"));
  EXPECT_EQ(read_file(proj / "dist/app.js"), "built\n");

  EXPECT_EQ(ksbox({"sync", "alpha"}).exit_code, 2) << "nothing to sync";

  // Diverged: the host is left exactly as it was.
  ASSERT_EQ(guest("alpha", "cd /workspace && echo g >> agent.txt && git commit -qam guest2").exit_code, 0);
  std::ofstream(proj / "host.txt") << "host\n";
  ASSERT_EQ(git(proj, {"add", "host.txt"}).exit_code, 0);
  ASSERT_EQ(git(proj, {"commit", "-qm", "host work"}).exit_code, 0);
  const std::string host_head = head(proj);
  r = ksbox({"sync", "alpha"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(head(proj), host_head);
  EXPECT_EQ(read_file(proj / "agent.txt"), "agent\n");

  // Unsynced work keeps destroy from losing it; stop, then --force.
  EXPECT_EQ(ksbox({"destroy", "alpha"}).exit_code, 1);
  r = ksbox({"stop", "alpha"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(status("alpha")["state"], "stopped");
  EXPECT_EQ(ksbox({"destroy", "alpha"}).exit_code, 1) << "unsynced commit";
  EXPECT_EQ(ksbox({"destroy", "alpha", "--force"}).exit_code, 0);
  expect_gone("alpha", vmm);
  EXPECT_EQ(ksbox({"destroy", "alpha", "--force"}).exit_code, 0) << "--force always succeeds";
}

TEST_F(LifecycleTest, CrashRecoveryAndFresh) {
  const fs::path proj = make_project("beta");
  start(proj);
  ASSERT_EQ(guest("beta", kCommitInGuest).exit_code, 0);
  const pid_t vmm = status("beta")["pid"].get<pid_t>();
  ASSERT_EQ(::kill(vmm, SIGKILL), 0);
  for (int i = 0; i < 100 && ::kill(vmm, 0) == 0; ++i) ::usleep(50'000);
  EXPECT_EQ(status("beta")["state"], "crashed");
  auto l = ksbox({"list", "--json"});
  EXPECT_NE(l.out.find("crashed"), std::string::npos) << l.out;

  // The next start recovers, with the committed work intact.
  start(proj);
  auto r = guest("beta", "cd /workspace && git log --format=%s");
  EXPECT_EQ(r.out, "agent work\ninit\n") << r.err;
  EXPECT_EQ(ksbox({"run", proj.string(), "--no-attach"}).exit_code, 2) << "already running";

  // --fresh discards the sandbox's clone.
  start(proj, {"--fresh"});
  r = guest("beta", "cd /workspace && git log --format=%s");
  EXPECT_EQ(r.out, "init\n") << r.err;
  // Boot-time choices on a later run apply; the workspace kind needs --fresh.
  ASSERT_EQ(ksbox({"stop", "beta"}).exit_code, 0);
  EXPECT_EQ(ksbox({"run", proj.string(), "--no-attach", "--workspace", "live"}).exit_code, 6);
  auto again = ksbox({"run", proj.string(), "--no-attach", "--memory", "640", "--image", "initramfs"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(status("beta")["memory_mib"], 640);
  EXPECT_EQ(status("beta")["vcpus"], 1) << "kept from the first run";
  const pid_t vmm2 = status("beta")["pid"].get<pid_t>();
  EXPECT_EQ(ksbox({"destroy", "beta", "--force"}).exit_code, 0);
  expect_gone("beta", vmm2);
}

TEST_F(LifecycleTest, TwoSandboxesAtOnceAndAutoCommit) {
  const fs::path a = make_project("gamma");
  const fs::path b = make_project("delta");
  start(a, {"--sync-mode", "auto-commit"});
  start(b, {"--workspace", "live"});  // the project itself, read-write
  auto l = ksbox({"list", "--json"});
  const json all = json::parse(l.out, nullptr, false);
  ASSERT_TRUE(all.is_array()) << l.out;
  EXPECT_EQ(all.size(), 2u);
  for (const auto& s : all) EXPECT_EQ(s["state"], "running") << s.dump();

  // auto-commit: ksbox commits the guest's changes before syncing.
  ASSERT_EQ(guest("gamma", "echo one > /workspace/one.txt").exit_code, 0);
  ASSERT_EQ(guest("delta", kCommitInGuest).exit_code, 0);
  auto r = ksbox({"sync", "gamma"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(a / "one.txt"), "one\n");
  // The guest sees the commit the host made in its clone's .git (the
  // workspace share caches all but .git; there names last 1 s).
  r = guest("gamma", "sleep 2 && cd /workspace && git status --porcelain && git log -1 --format=%s");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ksbox: auto-commit 1 file\n") << r.err;
  // Live: the commit is in the project already; there is nothing to sync.
  EXPECT_EQ(read_file(b / "agent.txt"), "agent\n");
  EXPECT_EQ(git(b, {"log", "-1", "--format=%s"}).out, "agent work\n");
  EXPECT_EQ(ksbox({"sync", "delta"}).exit_code, 2);

  // stop with auto-commit commits what is left; a later sync brings it.
  ASSERT_EQ(guest("gamma", "echo two > /workspace/two.txt").exit_code, 0);
  EXPECT_EQ(ksbox({"stop", "gamma", "--sync"}).exit_code, 0);
  EXPECT_EQ(read_file(a / "two.txt"), "two\n");
  EXPECT_EQ(ksbox({"stop", "delta"}).exit_code, 0);
}

// Every regular file under `dir` that contains `needle`.
std::vector<fs::path> files_containing(const fs::path& dir, const std::string& needle) {
  std::vector<fs::path> found;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && read_file(e.path()).find(needle) != std::string::npos) found.push_back(e.path());
  return found;
}

TEST_F(LifecycleTest, ConfigHooksEnvAndAutoIdle) {
  const fs::path proj = make_project("zeta");
  std::ofstream(proj / ".ksbox.json") << R"({
    "name": "zed", "sync_mode": "auto-idle", "idle_seconds": 2, "env": ["KSBOX_TEST_VAR"],
    "network": "filtered", "allow": ["allowed.test"],
    "shares": [{"tag": "data", "host_dir": "../zeta-data", "read_only": true}],
    "hooks": {"pre_up": ["echo \"up $KSBOX_SANDBOX\" > hook-up.txt", "exit 3"],
              "post_down": ["echo down > hook-down.txt"]}})";
  fs::create_directories(root_ / "zeta-data");
  std::ofstream(root_ / "zeta-data/input.txt") << "reference\n";
  ::setenv("ANTHROPIC_API_KEY", "sk-test-secret-123", 1);
  ::setenv("KSBOX_TEST_VAR", "from-host", 1);

  // With a command: its status comes back, the sandbox keeps running.
  started_.push_back("zed");
  auto r = ksbox({"run", proj.string(), "--vcpus", "1", "--memory", "768", "--image", "initramfs", "--", "sh", "-c",
                  "echo $ANTHROPIC_API_KEY $KSBOX_TEST_VAR; pwd; id -u; exit 7"});
  ::unsetenv("ANTHROPIC_API_KEY");
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_EQ(r.out, "sk-test-secret-123 from-host\n/workspace\n1000\n");
  EXPECT_EQ(read_file(proj / "hook-up.txt"), "up zed\n");
  EXPECT_NE(r.err.find("pre-up hook 'exit 3'"), std::string::npos) << "a failing hook warns: " << r.err;
  EXPECT_EQ(status("zed")["state"], "running");
  EXPECT_EQ(files_containing(root_ / "state", "sk-test-secret-123"), std::vector<fs::path>{})
      << "a secret was written to the state directory";

  // The config's extra share is on /mnt/TAG, read-only as configured.
  r = guest("zed", "cat /mnt/data/input.txt; echo x > /mnt/data/new.txt && echo wrote");
  EXPECT_EQ(r.out, "reference\n") << r.err;
  EXPECT_FALSE(fs::exists(root_ / "zeta-data/new.txt"));

  // The config's network: filtered, its `allow` added to the built-in list
  // (21 names); a name off the list gets NXDOMAIN, and the egress log says so.
  r = guest("zed", "nslookup blocked.example 2>&1; true");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  r = ksbox({"logs", "zed"});
  EXPECT_NE(r.out.find("filtered network: 22 names allowed"), std::string::npos) << r.out;
  r = ksbox({"logs", "zed", "--egress"});
  EXPECT_NE(r.out.find(R"("name":"blocked.example")"), std::string::npos) << r.out;

  // auto-idle: the guest's changes come back by themselves once it is quiet.
  ASSERT_EQ(guest("zed", "echo idle > /workspace/idle.txt").exit_code, 0);
  for (int i = 0; i < 120 && !fs::exists(proj / "idle.txt"); ++i) ::usleep(500'000);
  EXPECT_EQ(read_file(proj / "idle.txt"), "idle\n");
  EXPECT_EQ(git(proj, {"status", "--porcelain", "idle.txt"}).out, "") << "synced as a commit";

  r = ksbox({"stop", "zed"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(proj / "hook-down.txt"), "down\n");
  ::unsetenv("KSBOX_TEST_VAR");
}

std::string first_line(const fs::path& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// `ksbox run` at a terminal: a shell at /workspace as the sandbox user;
// Ctrl-] detaches and the sandbox stays; `ksbox ssh` (attach) comes back.
TEST_F(LifecycleTest, RunAttachesAShellAndAttachComesBack) {
  ASSERT_EQ(::access("/usr/bin/tmux", X_OK), 0) << "tmux is missing: run scripts/setup.sh";
  const fs::path proj = make_project("eta");
  started_.push_back("eta");
  Tmux tmux(root_.string());
  const fs::path st = root_ / "run-status";
  const std::string cmd = "cd " + proj.string() + " && " + KSBOX_CLI +
                          " run --vcpus 1 --memory 768 --image initramfs; echo $? > " + st.string() + "; sleep 60";
  ASSERT_EQ(tmux.run({"new-session", "-d", "-s", "s", "-x", "120", "-y", "40", cmd}).exit_code, 0);
  // Typed ahead: the terminal keeps the keys until the shell reads them.
  tmux.type("pwd; id -un; echo $((6*7))x");
  tmux.enter();
  EXPECT_TRUE(tmux.wait_for_screen(std::regex("\n/workspace\\s*\nsandbox\\s*\n42x"), std::chrono::seconds(180)))
      << tmux.screen();
  tmux.run({"send-keys", "-t", "s", "C-]"});
  for (int i = 0; i < 300 && first_line(st).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(first_line(st), "0") << tmux.screen();
  EXPECT_EQ(status("eta")["state"], "running");

  tmux.run({"kill-server"});
  const std::string again = "cd " + proj.string() + " && " + KSBOX_CLI + " ssh; echo $? > " + st.string() +
                            "; sleep 60";
  fs::remove(st);
  ASSERT_EQ(tmux.run({"new-session", "-d", "-s", "s", "-x", "120", "-y", "40", again}).exit_code, 0);
  tmux.type("exit 5");
  tmux.enter();
  for (int i = 0; i < 300 && first_line(st).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(first_line(st), "5") << tmux.screen();
  EXPECT_EQ(ksbox({"stop", "eta"}).exit_code, 0);
}

TEST_F(LifecycleTest, BadInputsHaveTheirExitCodes) {
  const fs::path not_repo = root_ / "plain";
  fs::create_directories(not_repo);
  auto r = ksbox({"run", not_repo.string(), "--no-attach"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("not in a git repository"), std::string::npos) << r.err;

  const fs::path proj = make_project("eps");
  r = ksbox({"run", proj.string(), "--no-attach", "--network", "sideways"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("--network"), std::string::npos) << r.err;
  r = ksbox({"run", proj.string(), "--no-attach", "--network", "filtered", "--publish", "8080:80"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("--publish needs the user network"), std::string::npos) << r.err;
  r = ksbox({"run", proj.string(), "--no-attach", "--network", "off", "--publish", "8080:80"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  r = ksbox({"run", proj.string(), "--no-attach", "--memory", "16"});
  EXPECT_EQ(r.exit_code, 6) << r.err;

  ::setenv("KSBOX_GUEST_DIR", (root_ / "nowhere").c_str(), 1);
  r = ksbox({"run", proj.string(), "--no-attach"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  ::setenv("KSBOX_GUEST_DIR", (root_ / "guest").c_str(), 1);

  ::setenv("KSBOX_KVM_DEVICE", (root_ / "no-kvm").c_str(), 1);
  r = ksbox({"run", proj.string(), "--no-attach"});
  ::unsetenv("KSBOX_KVM_DEVICE");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("kvm"), std::string::npos) << r.err;

  EXPECT_EQ(ksbox({"exec", "nosuch", "--", "true"}).exit_code, 255);
  EXPECT_EQ(ksbox({"sync", "nosuch"}).exit_code, 1);
  EXPECT_EQ(ksbox({"status", "nosuch"}).exit_code, 1);
  EXPECT_EQ(ksbox({"destroy", "nosuch"}).exit_code, 1);
  EXPECT_EQ(ksbox({"stop", "nosuch"}).exit_code, 1);
}

}  // namespace
}  // namespace ksbox::test
