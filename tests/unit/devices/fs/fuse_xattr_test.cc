// GETXATTR / SETXATTR / LISTXATTR / REMOVEXATTR against a temp directory:
// the user.* namespace passes, nothing else reaches the host.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs {
namespace {

using testing::Args;
using testing::FuseClient;
using testing::Reply;
using testing::TempDir;
using testing::write_file;

// SETXATTR as the kernel sends it without FUSE_SETXATTR_EXT: the 8-byte
// compat struct, the name, the value.
Args setxattr_args(std::string_view name, std::string_view value, uint32_t flags = 0) {
  fuse_setxattr_in si{};
  si.size = static_cast<uint32_t>(value.size());
  si.flags = flags;
  Args a;
  a.bytes.assign(reinterpret_cast<uint8_t*>(&si), reinterpret_cast<uint8_t*>(&si) + FUSE_COMPAT_SETXATTR_IN_SIZE);
  return a.str(name).raw(value);
}

class FuseXattrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(c.init().error(), 0);
    write_file(dir.path() / "f", "x");
    f = c.lookup(1, "f").nodeid;
  }
  int set(uint64_t node, std::string_view name, std::string_view value, uint32_t flags = 0) {
    return c.send(FUSE_SETXATTR, node, setxattr_args(name, value, flags)).error();
  }
  Reply get(uint64_t node, std::string_view name, uint32_t size) {
    fuse_getxattr_in gi{};
    gi.size = size;
    return c.send(FUSE_GETXATTR, node, Args().add(gi).str(name));
  }
  Reply list(uint64_t node, uint32_t size) {
    fuse_getxattr_in gi{};
    gi.size = size;
    return c.send(FUSE_LISTXATTR, node, Args().add(gi));
  }
  int remove(uint64_t node, std::string_view name) {
    return c.send(FUSE_REMOVEXATTR, node, Args().str(name)).error();
  }
  std::string host_get(const char* name) {
    char buf[256];
    const ssize_t n = ::lgetxattr((dir.path() / "f").c_str(), name, buf, sizeof buf);
    return n < 0 ? "<" + std::to_string(errno) + ">" : std::string(buf, static_cast<size_t>(n));
  }
  TempDir dir;
  FuseClient c{dir.path()};
  uint64_t f = 0;
};

TEST_F(FuseXattrTest, SetGetProbeAndErange) {
  ASSERT_EQ(set(f, "user.k", "value"), 0);
  EXPECT_EQ(host_get("user.k"), "value");
  const Reply probe = get(f, "user.k", 0);
  ASSERT_EQ(probe.error(), 0);
  EXPECT_EQ(probe.body.size(), sizeof(fuse_getxattr_out));
  EXPECT_EQ(probe.as<fuse_getxattr_out>().size, 5u);
  const Reply v = get(f, "user.k", 64);
  ASSERT_EQ(v.error(), 0);
  EXPECT_EQ(std::string(v.body.begin(), v.body.end()), "value");
  EXPECT_EQ(get(f, "user.k", 4).error(), -ERANGE);
  EXPECT_EQ(get(f, "user.missing", 64).error(), -ENODATA);
  // Binary values and an empty one.
  ASSERT_EQ(set(f, "user.bin", std::string("a\0b", 3)), 0);
  EXPECT_EQ(get(f, "user.bin", 3).body.size(), 3u);
  ASSERT_EQ(set(f, "user.empty", ""), 0);
  EXPECT_EQ(get(f, "user.empty", 0).as<fuse_getxattr_out>().size, 0u);
}

TEST_F(FuseXattrTest, CreateReplaceAndRemove) {
  ASSERT_EQ(set(f, "user.k", "1", XATTR_CREATE), 0);
  EXPECT_EQ(set(f, "user.k", "2", XATTR_CREATE), -EEXIST);
  EXPECT_EQ(set(f, "user.other", "2", XATTR_REPLACE), -ENODATA);
  EXPECT_EQ(set(f, "user.k", "3", XATTR_REPLACE), 0);
  EXPECT_EQ(set(f, "user.k", "4", 0x40), -EINVAL);
  EXPECT_EQ(host_get("user.k"), "3");
  EXPECT_EQ(remove(f, "user.k"), 0);
  EXPECT_EQ(remove(f, "user.k"), -ENODATA);
  EXPECT_EQ(host_get("user.k"), "<" + std::to_string(ENODATA) + ">");
}

TEST_F(FuseXattrTest, OnlyTheUserNamespaceReachesTheHost) {
  // The host may carry other namespaces (set here directly; the tests may run
  // as root, where a passed-through trusted.* would succeed).
  const bool root_host = ::lsetxattr((dir.path() / "f").c_str(), "trusted.host", "t", 1, 0) == 0;
  ASSERT_EQ(set(f, "user.a", "1"), 0);
  for (const char* name : {"trusted.evil", "security.capability", "security.selinux", "system.posix_acl_access",
                           "userx", "USER.a", "nonsense"}) {
    EXPECT_EQ(set(f, name, "v"), -EOPNOTSUPP) << name;
    EXPECT_EQ(get(f, name, 64).error(), -EOPNOTSUPP) << name;
    EXPECT_EQ(remove(f, name), -EOPNOTSUPP) << name;
  }
  EXPECT_EQ(host_get("trusted.evil"), "<" + std::to_string(ENODATA) + ">");
  EXPECT_EQ(host_get("security.capability"), "<" + std::to_string(ENODATA) + ">");
  if (root_host) {
    EXPECT_EQ(get(f, "trusted.host", 64).error(), -EOPNOTSUPP);
    EXPECT_EQ(remove(f, "trusted.host"), -EOPNOTSUPP);
    EXPECT_EQ(host_get("trusted.host"), "t");
  }
  // Lists show user.* only, and the probe counts only those.
  ASSERT_EQ(set(f, "user.bb", "2"), 0);
  const std::string expect("user.a\0user.bb\0", 15);
  const Reply probe = list(f, 0);
  ASSERT_EQ(probe.error(), 0);
  EXPECT_EQ(probe.as<fuse_getxattr_out>().size, expect.size());
  const Reply l = list(f, 4096);
  ASSERT_EQ(l.error(), 0);
  const std::string got(l.body.begin(), l.body.end());
  EXPECT_TRUE(got == expect || got == std::string("user.bb\0user.a\0", 15)) << got;  // in the host's order
  EXPECT_EQ(list(f, static_cast<uint32_t>(expect.size() - 1)).error(), -ERANGE);
}

TEST_F(FuseXattrTest, DirectoriesYesSpecialFilesNo) {
  std::filesystem::create_directory(dir.path() / "d");
  const uint64_t d = c.lookup(1, "d").nodeid;
  ASSERT_EQ(set(d, "user.dir", "yes"), 0);
  EXPECT_EQ(get(d, "user.dir", 16).body.size(), 3u);
  EXPECT_EQ(list(d, 0).as<fuse_getxattr_out>().size, sizeof "user.dir");
  // A FIFO and a symlink: not touched, answered as Linux answers for user.*.
  ASSERT_EQ(::mkfifo((dir.path() / "fifo").c_str(), 0600), 0);
  std::filesystem::create_symlink("f", dir.path() / "ln");
  for (const char* name : {"fifo", "ln"}) {
    const uint64_t n = c.lookup(1, name).nodeid;
    EXPECT_EQ(set(n, "user.k", "v"), -EPERM) << name;
    EXPECT_EQ(get(n, "user.k", 16).error(), -ENODATA) << name;
    EXPECT_EQ(remove(n, "user.k"), -EPERM) << name;
    const Reply l = list(n, 0);
    EXPECT_EQ(l.error(), 0) << name;
    EXPECT_EQ(l.as<fuse_getxattr_out>().size, 0u) << name;
  }
  EXPECT_EQ(set(4242, "user.k", "v"), -ESTALE);
  EXPECT_EQ(get(4242, "user.k", 0).error(), -ESTALE);
}

TEST(FuseXattrReadOnly, ReadsWorkChangesAreErofs) {
  TempDir d;
  write_file(d.path() / "f", "x");
  ASSERT_EQ(::setxattr((d.path() / "f").c_str(), "user.k", "v", 1, 0), 0);
  PassthroughOptions ro;
  ro.read_only = true;
  FuseClient c(d.path(), ro);
  ASSERT_EQ(c.init().error(), 0);
  const uint64_t f = c.lookup(1, "f").nodeid;
  fuse_getxattr_in gi{};
  gi.size = 16;
  EXPECT_EQ(c.send(FUSE_GETXATTR, f, Args().add(gi).str("user.k")).body.size(), 1u);
  EXPECT_EQ(c.send(FUSE_SETXATTR, f, setxattr_args("user.k", "w")).error(), -EROFS);
  EXPECT_EQ(c.send(FUSE_REMOVEXATTR, f, Args().str("user.k")).error(), -EROFS);
}

TEST_F(FuseXattrTest, MalformedRequests) {
  // The extended struct was not negotiated: its extra 8 bytes read as an
  // empty name.
  fuse_setxattr_in ext{};
  ext.size = 1;
  EXPECT_EQ(c.send(FUSE_SETXATTR, f, Args().add(ext).str("user.k").raw("v")).error(), -EINVAL);
  EXPECT_EQ(c.count(Malformed::kBadName), 1u);
  // The value shorter or longer than its size.
  Args a = setxattr_args("user.k", "value");
  a.bytes.pop_back();
  EXPECT_EQ(c.send(FUSE_SETXATTR, f, a).error(), -EINVAL);
  EXPECT_EQ(c.count(Malformed::kTruncatedArgs), 1u);
  EXPECT_EQ(c.send(FUSE_SETXATTR, f, setxattr_args("user.k", "value").raw("!")).error(), -EINVAL);
  EXPECT_EQ(c.count(Malformed::kTrailingBytes), 1u);
  fuse_setxattr_in huge{};
  huge.size = XATTR_SIZE_MAX + 1;
  Args h;
  h.bytes.assign(reinterpret_cast<uint8_t*>(&huge), reinterpret_cast<uint8_t*>(&huge) + 8);
  EXPECT_EQ(c.send(FUSE_SETXATTR, f, h.str("user.k")).error(), -E2BIG);
  EXPECT_EQ(c.count(Malformed::kBadCount), 1u);
  // Names: empty, unterminated, too long.
  fuse_getxattr_in gi{};
  EXPECT_EQ(c.send(FUSE_GETXATTR, f, Args().add(gi).str("")).error(), -EINVAL);
  EXPECT_EQ(c.send(FUSE_GETXATTR, f, Args().add(gi).raw("user.k")).error(), -EINVAL);
  EXPECT_EQ(c.send(FUSE_REMOVEXATTR, f, Args().str("user." + std::string(XATTR_NAME_MAX, 'a'))).error(), -EINVAL);
  EXPECT_EQ(c.count(Malformed::kBadName), 4u);
  EXPECT_EQ(c.send(FUSE_LISTXATTR, f, Args().add(gi).str("junk")).error(), -EINVAL);
  EXPECT_EQ(c.count(Malformed::kTrailingBytes), 2u);
  // A value larger than the reply space: -ERANGE, not an overrun.
  ASSERT_EQ(c.send(FUSE_SETXATTR, f, setxattr_args("user.big", std::string(1000, 'v'))).error(), 0);
  gi.size = 1000;
  EXPECT_EQ(c.send(FUSE_GETXATTR, f, Args().add(gi).str("user.big"), 200).error(), -ERANGE);
  EXPECT_EQ(c.count(Malformed::kReplyTooLarge), 1u);
}

}  // namespace
}  // namespace ksbox::devices::fs
