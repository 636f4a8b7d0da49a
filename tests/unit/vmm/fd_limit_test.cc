#include "vmm/fd_limit.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <fstream>

namespace ksbox {
namespace {

// Puts the process's RLIMIT_NOFILE back however the test ends.
class FdLimitTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_), 0); }
  void TearDown() override { EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &saved_), 0); }
  rlimit saved_{};
};

uint64_t nr_open() {
  uint64_t n = 0;
  std::ifstream("/proc/sys/fs/nr_open") >> n;
  return n;
}

// Whether this process may raise its hard limit (CAP_SYS_RESOURCE); leaves
// the limits as they were.
bool may_raise_hard_limit(const rlimit& saved) {
  if (saved.rlim_max == RLIM_INFINITY || saved.rlim_max >= nr_open()) return false;
  rlimit up = saved;
  up.rlim_max = saved.rlim_max + 1;
  if (::setrlimit(RLIMIT_NOFILE, &up) != 0) return false;
  EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  return true;
}

TEST_F(FdLimitTest, RaisesTheSoftLimitToTheHardLimit) {
  if (saved_.rlim_max == RLIM_INFINITY || saved_.rlim_max <= 256) GTEST_SKIP() << "hard limit too low to lower";
  rlimit low = saved_;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  const bool privileged = may_raise_hard_limit(saved_);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  // With CAP_SYS_RESOURCE both limits go to nr_open; else the hard limit stays.
  const uint64_t expected = privileged ? nr_open() : uint64_t{saved_.rlim_max};
  EXPECT_EQ(raise_fd_limit(), expected);
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, expected);
  EXPECT_EQ(now.rlim_max, expected);
}

TEST_F(FdLimitTest, AtTheHardLimitAlreadyNothingChanges) {
  rlimit top = saved_;
  top.rlim_cur = top.rlim_max;
  if (may_raise_hard_limit(saved_)) GTEST_SKIP() << "privileged: the hard limit is raised too (tested above)";
  if (::setrlimit(RLIMIT_NOFILE, &top) != 0) GTEST_SKIP() << "cannot set the soft limit to the hard one";
  const uint64_t expected = top.rlim_max == RLIM_INFINITY ? UINT64_MAX : uint64_t{top.rlim_max};
  EXPECT_EQ(raise_fd_limit(), expected);
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, top.rlim_cur);
}

}  // namespace
}  // namespace ksbox
