// confine_clone: after it, no symlink inside the clone is followed, while
// reading symlinks still works and the host's mount namespace is untouched.
#include "cli/git/clone_confinement.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

#include "git_test_repo.h"

namespace ksbox::git::test {
namespace {

// Exit statuses of the child.
constexpr int kOk = 0, kConfineFailed = 10, kFollowed = 11, kNoReadlink = 12, kNoPlainRead = 13, kNoPrivs = 14;

class CloneConfinementTest : public GitFixture {
 protected:
  void SetUp() override {
    GitFixture::SetUp();
    make_project_and_clone();
    // What a guest could plant: symlinks to the host repository.
    fs::create_directory_symlink(project() / ".git", clone() / "evil");
    fs::create_directory_symlink(project() / ".git/refs", clone() / ".git/refs-evil");
  }

  // Confines in a child (the namespace change is for the whole process),
  // optionally as an unprivileged user first; returns its exit status.
  int run_child(bool drop_privileges, std::string* why) {
    int pipefd[2];
    EXPECT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipefd[0]);
      // Dumpable again after setuid, as a process that never was root is
      // (else /proc/self/uid_map stays root's).
      if (drop_privileges &&
          (::setgid(65534) != 0 || ::setuid(65534) != 0 || ::prctl(PR_SET_DUMPABLE, 1) != 0))
        ::_exit(kNoPrivs);
      std::string err = confine_clone(clone().string());
      if (!err.empty()) {
        (void)!::write(pipefd[1], err.data(), err.size());
        ::_exit(kConfineFailed);
      }
      if (::open((clone() / "evil/HEAD").c_str(), O_RDONLY | O_CLOEXEC) >= 0) ::_exit(kFollowed);
      if (errno != ELOOP) ::_exit(kFollowed);
      if (::open((clone() / ".git/refs-evil/heads/main").c_str(), O_RDONLY | O_CLOEXEC) >= 0) ::_exit(kFollowed);
      char buf[256];
      if (::readlink((clone() / "evil").c_str(), buf, sizeof buf) <= 0) ::_exit(kNoReadlink);
      if (::open((clone() / "README.md").c_str(), O_RDONLY | O_CLOEXEC) < 0) ::_exit(kNoPlainRead);
      ::_exit(kOk);
    }
    ::close(pipefd[1]);
    char buf[512];
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n > 0) why->assign(buf, static_cast<size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

TEST_F(CloneConfinementTest, SymlinksInTheCloneAreNotFollowed) {
  std::string why;
  EXPECT_EQ(run_child(false, &why), kOk) << why;
  // The host's namespace is unchanged: the symlink still resolves here.
  EXPECT_TRUE(fs::exists(clone() / "evil/HEAD"));
}

TEST_F(CloneConfinementTest, WorksUnprivilegedThroughAUserNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "not root: the test above already ran unprivileged";
  // nobody must be able to reach the clone.
  for (fs::path p = clone(); p != p.root_path(); p = p.parent_path())
    fs::permissions(p, fs::perms::others_exec | fs::perms::others_read, fs::perm_options::add);
  std::string why;
  int rc = run_child(true, &why);
  if (rc == kConfineFailed && why.find("unshare(CLONE_NEWUSER") != std::string::npos)
    GTEST_SKIP() << "unprivileged user namespaces are disabled on this machine: " << why;
  EXPECT_EQ(rc, kOk) << why;
}

}  // namespace
}  // namespace ksbox::git::test
