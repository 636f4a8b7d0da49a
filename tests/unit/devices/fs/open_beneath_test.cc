// open_beneath() on both of its paths: a plain component through openat,
// anything else through openat2 RESOLVE_BENEATH. Neither leads out of the
// directory.
#include "devices/fs/open_beneath.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/unit/test_helpers.h"

namespace ksbox::devices::fs {
namespace {

namespace sfs = std::filesystem;

class OpenBeneath : public ::testing::Test {
 protected:
  void SetUp() override {
    sfs::create_directory(share / "sub");
    std::ofstream(share / "sub" / "f") << "in";
    std::ofstream(outside.path() / "secret") << "out";
    sfs::create_symlink(outside.path() / "secret", share / "abs");
    sfs::create_symlink("../../" + outside.path().filename().string() + "/secret", share / "sub" / "rel");
    sfs::create_symlink(outside.path() / "made", share / "dangling");
    sfs::create_directory_symlink(outside.path(), share / "dirlink");
    dir = UniqueFd(::open(share.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir.valid());
  }
  // errno of a failed open, 0 if it opened.
  int error_of(const char* name, int flags, uint32_t mode = 0) {
    errno = 0;
    UniqueFd fd = open_beneath(dir.get(), name, flags, mode);
    return fd ? 0 : errno;
  }

  testing::TempDir top, outside;
  sfs::path share = top.path();
  UniqueFd dir;
};

TEST_F(OpenBeneath, APlainComponentOpensAndASymlinkGivesTheLinkItself) {
  UniqueFd sub = open_beneath(dir.get(), "sub", O_PATH);
  ASSERT_TRUE(sub.valid());
  UniqueFd link = open_beneath(dir.get(), "abs", O_PATH);
  ASSERT_TRUE(link.valid());
  struct stat st{};
  ASSERT_EQ(::fstat(link.get(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(error_of("abs", O_RDONLY), ELOOP);  // never followed to read
}

TEST_F(OpenBeneath, CreatingThroughADanglingSymlinkMakesNothingOutside) {
  EXPECT_NE(error_of("dangling", O_WRONLY | O_CREAT, 0644), 0);
  EXPECT_NE(error_of("dangling", O_WRONLY | O_CREAT | O_EXCL, 0644), 0);
  EXPECT_FALSE(sfs::exists(outside.path() / "made"));
}

TEST_F(OpenBeneath, PathsThatClimbOrFollowAreRefused) {
  EXPECT_EQ(error_of("..", O_PATH), EXDEV);
  EXPECT_EQ(error_of("sub/../..", O_PATH), EXDEV);
  EXPECT_EQ(error_of("/etc", O_PATH), EXDEV);
  EXPECT_EQ(error_of("dirlink/secret", O_RDONLY), ELOOP);
  EXPECT_EQ(error_of("sub/rel", O_RDONLY), ELOOP);
  UniqueFd f = open_beneath(dir.get(), "sub/f", O_RDONLY);  // several components, none a link
  EXPECT_TRUE(f.valid());
}

TEST_F(OpenBeneath, DotServesAnUnnamedFile) {
  UniqueFd d = open_beneath(dir.get(), "sub", O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(d.valid());
  UniqueFd tmp = open_beneath(d.get(), ".", O_RDWR | O_TMPFILE, 0600);
  ASSERT_TRUE(tmp.valid()) << std::strerror(errno);
  EXPECT_EQ(::write(tmp.get(), "x", 1), 1);
}

}  // namespace
}  // namespace ksbox::devices::fs
