// uid/gid mapping: the VMM's host user appears as the guest's sandbox user,
// every other owner as nobody, and SETATTR never changes host ownership.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs {
namespace {

using testing::Args;
using testing::FuseClient;
using testing::Reply;
using testing::TempDir;
using testing::write_file;

constexpr uint32_t kNobody = Passthrough::kOverflowId;

Reply chown(FuseClient& c, uint64_t node, uint32_t valid, uint32_t uid, uint32_t gid, uint32_t mode = 0) {
  fuse_setattr_in si{};
  si.valid = valid;
  si.uid = uid;
  si.gid = gid;
  si.mode = mode;
  return c.send(FUSE_SETATTR, node, Args().add(si));
}

TEST(FuseIdmap, CreatedFilesBelongToTheGuestUser) {
  TempDir d;
  FuseClient c(d.path());  // default ids: guest 1000:1000, host = the test's euid/egid
  ASSERT_EQ(c.init().error(), 0);
  const auto [e, fh] = c.create(1, "new", O_WRONLY | O_CREAT);
  ASSERT_NE(e.nodeid, 0u);
  EXPECT_EQ(e.attr.uid, 1000u);
  EXPECT_EQ(e.attr.gid, 1000u);
  struct stat st{};
  ASSERT_EQ(::stat((d.path() / "new").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());  // the host owner is simply the VMM's user
  fuse_mkdir_in mi{};
  mi.mode = 0755;
  const Reply m = c.send(FUSE_MKDIR, 1, Args().add(mi).str("dir"));
  EXPECT_EQ(m.as<fuse_entry_out>().attr.uid, 1000u);
  const Reply g = c.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{}));
  EXPECT_EQ(g.as<fuse_attr_out>().attr.uid, 1000u);  // the share root too
}

TEST(FuseIdmap, OtherHostOwnersAppearAsNobody) {
  TempDir d;
  write_file(d.path() / "f", "x");
  PassthroughOptions o;
  o.guest_uid = 4242;
  o.guest_gid = 4343;
  o.host_uid = ::geteuid() + 1;  // pretend the VMM runs as someone else
  FuseClient other(d.path(), o);
  ASSERT_EQ(other.init().error(), 0);
  const auto e = other.lookup(1, "f");
  EXPECT_EQ(e.attr.uid, kNobody);
  EXPECT_EQ(e.attr.gid, 4343u);  // the group still matches the host's
  o.host_uid.reset();
  o.host_gid = ::getegid() + 1;
  FuseClient mine(d.path(), o);
  ASSERT_EQ(mine.init().error(), 0);
  const auto m = mine.lookup(1, "f");
  EXPECT_EQ(m.attr.uid, 4242u);
  EXPECT_EQ(m.attr.gid, kNobody);
}

TEST(FuseIdmap, ChownOnlyToTheOwnerShown) {
  TempDir d;
  write_file(d.path() / "f", "x");
  ::chmod((d.path() / "f").c_str(), 0644);
  FuseClient c(d.path());
  ASSERT_EQ(c.init().error(), 0);
  const uint64_t f = c.lookup(1, "f").nodeid;
  struct stat before{};
  ASSERT_EQ(::stat((d.path() / "f").c_str(), &before), 0);
  const Reply same = chown(c, f, FATTR_UID | FATTR_GID, 1000, 1000);
  ASSERT_EQ(same.error(), 0);
  EXPECT_EQ(same.as<fuse_attr_out>().attr.uid, 1000u);
  EXPECT_EQ(chown(c, f, FATTR_UID, static_cast<uint32_t>(-1), 0).error(), 0);
  // Any other id is refused before anything changes (a root VMM would
  // otherwise hand the file to that host id; so would a mode in the same
  // request go through).
  EXPECT_EQ(chown(c, f, FATTR_UID, 0, 0).error(), -EPERM);
  EXPECT_EQ(chown(c, f, FATTR_GID, 0, 0).error(), -EPERM);
  EXPECT_EQ(chown(c, f, FATTR_UID, kNobody, 0).error(), -EPERM);
  EXPECT_EQ(chown(c, f, FATTR_UID | FATTR_MODE, 1234, 0, 0600).error(), -EPERM);
  struct stat after{};
  ASSERT_EQ(::stat((d.path() / "f").c_str(), &after), 0);
  EXPECT_EQ(after.st_uid, before.st_uid);
  EXPECT_EQ(after.st_gid, before.st_gid);
  EXPECT_EQ(after.st_mode & 07777, 0644u);

  // A file shown as nobody cannot be claimed by chown to the guest user.
  PassthroughOptions o;
  o.host_uid = ::geteuid() + 1;
  FuseClient other(d.path(), o);
  ASSERT_EQ(other.init().error(), 0);
  EXPECT_EQ(chown(other, other.lookup(1, "f").nodeid, FATTR_UID, 1000, 0).error(), -EPERM);
}

}  // namespace
}  // namespace ksbox::devices::fs
