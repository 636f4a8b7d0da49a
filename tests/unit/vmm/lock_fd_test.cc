#include "vmm/lock_fd.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox {
namespace {

std::string temp_file() {
  std::string path = "/tmp/ksbox-lock-XXXXXX";
  UniqueFd fd(::mkstemp(path.data()));
  EXPECT_TRUE(fd);
  return path;
}

TEST(HoldLock, KeepsTheCallersLockAndSetsCloexec) {
  const auto path = temp_file();
  UniqueFd fd(::open(path.c_str(), O_RDWR));
  ASSERT_EQ(::flock(fd.get(), LOCK_EX | LOCK_NB), 0);
  hold_lock(fd.get());
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
  UniqueFd other(::open(path.c_str(), O_RDWR));
  EXPECT_NE(::flock(other.get(), LOCK_EX | LOCK_NB), 0);  // held
  ::unlink(path.c_str());
}

TEST(HoldLock, RefusesALockHeldElsewhere) {
  const auto path = temp_file();
  UniqueFd holder(::open(path.c_str(), O_RDWR));
  ASSERT_EQ(::flock(holder.get(), LOCK_EX | LOCK_NB), 0);
  UniqueFd fd(::open(path.c_str(), O_RDWR));
  EXPECT_THROW(hold_lock(fd.get()), Error);
  EXPECT_THROW(hold_lock(999), Error);  // not open
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace ksbox
