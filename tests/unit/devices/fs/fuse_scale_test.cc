// A node_modules-sized tree: the guest may hold 100k inodes while the VMM's
// fd limit is far lower. With the VMM's limits (fit_to_fd_limit) the server
// keeps only a bounded cache of O_PATH fds and serves every lookup; the
// process never runs into EMFILE.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs::testing {
namespace {

TEST(FuseScale, HundredThousandFilesWithAThousandFds) {
  constexpr int kFiles = 100000;
  constexpr rlim_t kLimit = 1024;
  TempDir d;
  for (int i = 0; i < kFiles; ++i) {
    const int fd = ::open((d.path() / ("m" + std::to_string(i))).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << i;
    ::close(fd);
  }
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  const rlimit low{kLimit, saved.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  const PassthroughOptions opts = PassthroughOptions{}.fit_to_fd_limit(kLimit);
  int ok = 0, failed = 0;
  {
    FuseClient c(d.path(), opts);
    ASSERT_EQ(c.init().error(), 0);
    for (int i = 0; i < kFiles; ++i) {
      const Reply r = c.send(FUSE_LOOKUP, 1, Args().str("m" + std::to_string(i)));
      if (r.error() == 0) ++ok;
      else ++failed;
    }
    std::printf("fd limit %llu: %d looked up, %d failed; %zu inodes, %zu O_PATH fds open (budget %zu)\n",
                static_cast<unsigned long long>(kLimit), ok, failed, c.server.fs().inode_count(),
                c.server.fs().open_inode_fds(), opts.max_fds);
    EXPECT_EQ(ok, kFiles);
    EXPECT_EQ(c.server.fs().inode_count(), static_cast<size_t>(kFiles) + 1);
    EXPECT_LE(c.server.fs().open_inode_fds(), opts.max_fds);
    // Still serving, and the process has descriptors left.
    EXPECT_EQ(c.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{})).error(), 0);
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << "the process itself ran out of descriptors";
    if (fd >= 0) ::close(fd);
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
}

TEST(FuseScale, FitToFdLimitLeavesHeadroom) {
  const PassthroughOptions big = PassthroughOptions{}.fit_to_fd_limit(1u << 20);
  EXPECT_EQ(big.max_handles, PassthroughOptions{}.max_handles);
  EXPECT_LE(big.max_fds + big.max_handles, (1u << 20) - 2048);
  const PassthroughOptions small = PassthroughOptions{}.fit_to_fd_limit(1024);
  EXPECT_LE(small.max_fds + small.max_handles, 512u);
  EXPECT_GE(small.max_fds, 1u);
  EXPECT_GE(small.max_handles, 1u);
  // The inode table itself is not bounded by descriptors.
  EXPECT_EQ(small.max_inodes, PassthroughOptions{}.max_inodes);
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
