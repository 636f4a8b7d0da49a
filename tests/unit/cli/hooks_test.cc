// Hooks run by a real /bin/sh: in the project directory, with the extra
// environment, stdin from /dev/null; failures warn and the next hook runs.
#include "cli/hooks.h"

#include <signal.h>
#include <gtest/gtest.h>


#include "tests/unit/test_helpers.h"

namespace ksbox::cli {
namespace {

using ksbox::testing::file_contents;
using ksbox::testing::TempDir;
namespace fs = std::filesystem;

TEST(Hooks, RunInTheProjectDirWithTheExtraEnvironment) {
  TempDir dir;
  ::setenv("KSBOX_HOOK_TEST_KEEP", "ours", 1);
  ::setenv("KSBOX_SANDBOX", "replaced", 1);
  const size_t failed = run_hooks(
      "post-up",
      {"pwd > where", "echo \"$KSBOX_SANDBOX $KSBOX_STATE_DIR $KSBOX_HOOK_TEST_KEEP\" > env",
       "cat > stdin; echo $? >> stdin"},
      dir.path(), {"KSBOX_SANDBOX=my-box", "KSBOX_STATE_DIR=/state/my-box"});
  ::unsetenv("KSBOX_HOOK_TEST_KEEP");
  ::unsetenv("KSBOX_SANDBOX");
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(file_contents(dir.path() / "where"), fs::canonical(dir.path()).string() + "\n");
  EXPECT_EQ(file_contents(dir.path() / "env"), "my-box /state/my-box ours\n");
  EXPECT_EQ(file_contents(dir.path() / "stdin"), "0\n");  // /dev/null: empty, at once
}

TEST(Hooks, AFailingHookWarnsAndTheNextOneRuns) {
  TempDir dir;
  ::testing::internal::CaptureStderr();
  const size_t failed =
      run_hooks("pre-up", {"exit 3", "kill -TERM $$", "no-such-command-ksbox", "touch ran"}, dir.path(), {});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(failed, 3u);
  EXPECT_NE(err.find("ksbox: warning: pre-up hook 'exit 3' exited 3; continuing\n"), std::string::npos) << err;
  EXPECT_NE(err.find("ksbox: warning: pre-up hook 'kill -TERM $$' was killed by signal 15 (Terminated); "
                     "continuing\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("ksbox: warning: pre-up hook 'no-such-command-ksbox' exited 127 (command not found); "
                     "continuing\n"),
            std::string::npos)
      << err;
  EXPECT_TRUE(fs::exists(dir.path() / "ran"));
}

TEST(Hooks, AHookThatCannotStartWarns) {
  TempDir dir;
  ::testing::internal::CaptureStderr();
  const size_t failed = run_hooks("pre-down", {"true"}, dir.path() / "gone", {});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(failed, 1u);
  EXPECT_NE(err.find("ksbox: warning: pre-down hook 'true' could not be started in "), std::string::npos) << err;
  EXPECT_NE(err.find("No such file or directory; continuing"), std::string::npos) << err;
}

TEST(Hooks, RunWithDefaultSignalsWhateverTheCallerBlocked) {
  TempDir dir;
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  const size_t failed = run_hooks("post-down", {"grep SigBlk /proc/self/status > mask"}, dir.path(), {});
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(file_contents(dir.path() / "mask"), "SigBlk:\t0000000000000000\n");
}

TEST(Hooks, NoCommandsNoWork) { EXPECT_EQ(run_hooks("pre-up", {}, "/nonexistent", {}), 0u); }

}  // namespace
}  // namespace ksbox::cli
