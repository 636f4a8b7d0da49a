#include "vmm/fd_limit.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

namespace ksbox {
namespace {

// Puts the process's RLIMIT_NOFILE back however the test ends.
class FdLimitTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_), 0); }
  void TearDown() override { EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &saved_), 0); }
  rlimit saved_{};
};

TEST_F(FdLimitTest, RaisesTheSoftLimitToTheHardLimit) {
  if (saved_.rlim_max == RLIM_INFINITY || saved_.rlim_max <= 256) GTEST_SKIP() << "hard limit too low to lower";
  rlimit low = saved_;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  EXPECT_EQ(raise_fd_limit(), uint64_t{saved_.rlim_max});
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, saved_.rlim_max);
  EXPECT_EQ(now.rlim_max, saved_.rlim_max);  // the hard limit is left alone
}

TEST_F(FdLimitTest, AtTheHardLimitAlreadyNothingChanges) {
  rlimit top = saved_;
  top.rlim_cur = top.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &top) != 0) GTEST_SKIP() << "cannot set the soft limit to the hard one";
  const uint64_t expected = top.rlim_max == RLIM_INFINITY ? UINT64_MAX : uint64_t{top.rlim_max};
  EXPECT_EQ(raise_fd_limit(), expected);
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, top.rlim_cur);
}

}  // namespace
}  // namespace ksbox
