// A node_modules-sized tree: every inode the guest looks up holds an O_PATH
// fd on the host, so 100k cached files need 100k fds. With the VMM's limits
// (raise_fd_limit, fit_to_fd_limit) the server either serves them all or,
// where the host's hard limit is too low, answers ENFILE - never EMFILE, and
// it keeps serving.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/unit/devices/fs/fuse_test_client.h"
#include "vmm/fd_limit.h"

namespace ksbox::devices::fs::testing {
namespace {

TEST(FuseScale, HundredThousandFilesNeverRunIntoEmfile) {
  constexpr int kFiles = 100000;
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  const uint64_t limit = raise_fd_limit();
  TempDir d;
  for (int i = 0; i < kFiles; ++i) {
    const int fd = ::open((d.path() / ("m" + std::to_string(i))).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << i;
    ::close(fd);
  }
  const PassthroughOptions opts = PassthroughOptions{}.fit_to_fd_limit(limit);
  FuseClient c(d.path(), opts);
  ASSERT_EQ(c.init().error(), 0);
  int ok = 0, enfile = 0, other = 0;
  for (int i = 0; i < kFiles; ++i) {
    const Reply r = c.send(FUSE_LOOKUP, 1, Args().str("m" + std::to_string(i)));
    if (r.error() == 0) ++ok;
    else if (r.error() == -ENFILE) ++enfile;
    else ++other;
  }
  std::printf("fd limit %llu: %d looked up, %d refused with ENFILE (inode table %zu)\n",
              static_cast<unsigned long long>(limit), ok, enfile, opts.max_inodes);
  EXPECT_EQ(other, 0);
  if (opts.max_inodes > kFiles) {
    EXPECT_EQ(ok, kFiles);
  } else {
    EXPECT_EQ(ok, static_cast<int>(opts.max_inodes) - 1);  // the root holds one entry
    EXPECT_EQ(enfile, kFiles - ok);
  }
  // Still serving: with every inode held, a file can be opened and read.
  EXPECT_EQ(c.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{})).error(), 0);
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << "the process itself ran out of descriptors";
  if (fd >= 0) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &saved);
}

TEST(FuseScale, FitToFdLimitLeavesHeadroom) {
  const PassthroughOptions big = PassthroughOptions{}.fit_to_fd_limit(1u << 20);
  EXPECT_EQ(big.max_handles, PassthroughOptions{}.max_handles);
  EXPECT_LE(big.max_inodes + big.max_handles, (1u << 20) - 2048);
  const PassthroughOptions small = PassthroughOptions{}.fit_to_fd_limit(1024);
  EXPECT_LE(small.max_inodes + small.max_handles, 512u);
  EXPECT_GE(small.max_inodes, 1u);
  EXPECT_GE(small.max_handles, 1u);
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
