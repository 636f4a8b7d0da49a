// The sandbox store and the probe that tells a sandbox's state, without a VM:
// a child process stands in for the VMM (it holds the lock, writes the pid
// file), so running / starting / stopped / crashed are real.
#include "cli/sandbox_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "cli/vmm_process.h"
#include "vmm/error.h"
#include "vmm/pid_file.h"

namespace ksbox::cli {
namespace {

class SandboxStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ksbox-store-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    ::setenv("XDG_STATE_HOME", root_.c_str(), 1);
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    ::unsetenv("XDG_STATE_HOME");
    fs::remove_all(root_);
  }
  SandboxPaths make(const std::string& name) {
    const SandboxPaths p = sandbox_paths(name);
    fs::create_directories(p.dir);
    write_record(p, {name, root_ / "proj", "clone", 512, 1, "user", "manual", 1700000000});
    return p;
  }
  // A stand-in VMM: takes the lock and, if asked, writes its pid file.
  void fake_vmm(const SandboxPaths& p, bool write_pid) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    child_ = ::fork();
    if (child_ == 0) {
      const int fd = ::open(p.lock().c_str(), O_RDWR | O_CREAT, 0600);
      ::flock(fd, LOCK_EX);
      if (write_pid) new PidFile(p.pid_file());  // lives until the process dies
      [[maybe_unused]] auto n = ::write(ready[1], "x", 1);
      ::pause();
      ::_exit(0);
    }
    ::close(ready[1]);
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
  }
  void kill_fake_vmm() {
    ::kill(child_, SIGKILL);
    ::waitpid(child_, nullptr, 0);
    child_ = -1;
  }

  fs::path root_;
  pid_t child_ = -1;
};

TEST_F(SandboxStoreTest, RecordsRoundTripAndListTheSandboxes) {
  make("b");
  make("a");
  fs::create_directories(root_ / "ksbox/not-a-sandbox");  // no record: not listed
  EXPECT_EQ(list_sandbox_names(), (std::vector<std::string>{"a", "b"}));
  const SandboxRecord r = read_record(sandbox_paths("a"));
  EXPECT_EQ(r.name, "a");
  EXPECT_EQ(r.project, root_ / "proj");
  EXPECT_EQ(r.memory_mib, 512u);
  EXPECT_EQ(r.workspace_dir(sandbox_paths("a")), sandbox_paths("a").workspace());
  EXPECT_EQ(sandbox_paths("a").dir, root_ / "ksbox/a");
}

TEST_F(SandboxStoreTest, MalformedRecordsAreErrorsThatNameTheFile) {
  const SandboxPaths p = make("x");
  for (const char* text : {"", "[]", R"({"name":"x"})", R"({"name":"x","project":"/p","workspace":"nfs",
      "memory_mib":1,"vcpus":1,"network":"user","sync_mode":"manual","created_unix":0})"}) {
    std::ofstream(p.record()) << text;
    try {
      read_record(p);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("sandbox.json"), std::string::npos) << e.what();
    }
  }
}

TEST_F(SandboxStoreTest, TheLockIsExclusive) {
  const SandboxPaths p = make("l");
  auto first = try_lock(p);
  ASSERT_TRUE(first);
  EXPECT_FALSE(try_lock(p));
  first.reset();
  EXPECT_TRUE(try_lock(p));
}

TEST_F(SandboxStoreTest, ProbeTellsStoppedRunningStartingAndCrashed) {
  const SandboxPaths p = make("s");
  EXPECT_EQ(probe_sandbox(p).state, SandboxState::kStopped);

  fake_vmm(p, /*write_pid=*/false);
  EXPECT_EQ(probe_sandbox(p).state, SandboxState::kStarting);  // lock held, no pid file yet
  kill_fake_vmm();

  fake_vmm(p, /*write_pid=*/true);
  // No control socket answers: not confirmed as running yet.
  const SandboxProbe probe = probe_sandbox(p);
  EXPECT_EQ(probe.state, SandboxState::kStarting);
  ASSERT_TRUE(probe.vmm);
  EXPECT_EQ(probe.vmm->pid, child_);

  // kill -9: the lock goes with the process, the pid file stays.
  kill_fake_vmm();
  EXPECT_EQ(probe_sandbox(p).state, SandboxState::kCrashed);
  {
    auto lock = try_lock(p);
    ASSERT_TRUE(lock);
    remove_stale_runtime(p);
  }
  EXPECT_EQ(probe_sandbox(p).state, SandboxState::kStopped);
}

TEST_F(SandboxStoreTest, APidFileOfAnotherProcessIsNotTrusted) {
  const SandboxPaths p = make("r");
  fake_vmm(p, /*write_pid=*/false);
  // The pid of a live process, but not the start time it had: a reused pid.
  std::ofstream(p.pid_file()) << R"({"pid":)" << child_ << R"(,"starttime":1})";
  EXPECT_FALSE(probe_sandbox(p).vmm);
  EXPECT_THROW(stop_sandbox(p, std::chrono::milliseconds(100)), Error);
  EXPECT_EQ(::kill(child_, 0), 0) << "stop must not touch a process it cannot vouch for";
}

TEST_F(SandboxStoreTest, FindsTheTopOfTheGitWorkTree) {
  fs::create_directories(root_ / "proj/.git");
  fs::create_directories(root_ / "proj/src/deep");
  EXPECT_EQ(find_git_root(root_ / "proj/src/deep"), root_ / "proj");
  EXPECT_EQ(find_git_root(root_ / "proj"), root_ / "proj");
  EXPECT_FALSE(find_git_root(root_ / "missing"));
}

}  // namespace
}  // namespace ksbox::cli
