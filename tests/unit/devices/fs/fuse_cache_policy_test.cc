// The share's cache policy as the guest receives it: entry/attribute
// timeouts and the FOPEN_* flags of open, create and opendir replies.
// (Without FUSE_NO_OPENDIR_SUPPORT from the guest: see fuse_implicit_dirs_test.)
#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "test_helpers.h"
#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs::testing {
namespace {

struct Seen {
  uint64_t entry_valid, attr_valid;
  uint32_t open_flags, create_flags, opendir_flags;
};

Seen seen_with(CachePolicy policy) {
  TempDir d;
  write_file(d.path() / "f", "data");
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(policy));
  EXPECT_EQ(c.init().error(), 0);
  const auto e = c.lookup(1, "f");
  Seen s{e.entry_valid, e.attr_valid, 0, 0, 0};
  fuse_open_in oi{};
  oi.flags = O_RDWR;
  s.open_flags = c.send(FUSE_OPEN, e.nodeid, Args().add(oi)).as<fuse_open_out>().open_flags;
  s.opendir_flags = c.send(FUSE_OPENDIR, 1, Args().add(fuse_open_in{})).as<fuse_open_out>().open_flags;
  fuse_create_in ci{};
  ci.flags = O_RDWR | O_CREAT;
  ci.mode = 0644;
  const Reply r = c.send(FUSE_CREATE, 1, Args().add(ci).str("new"));
  EXPECT_EQ(r.error(), 0);
  fuse_open_out oo{};
  std::memcpy(&oo, r.body.data() + sizeof(fuse_entry_out), sizeof oo);
  s.create_flags = oo.open_flags;
  return s;
}

TEST(FuseCachePolicy, AutoIsTheDefaultAndKeepsHostEditsVisible) {
  EXPECT_EQ(PassthroughOptions{}.cache, CachePolicy::kAuto);
  const Seen s = seen_with(CachePolicy::kAuto);
  EXPECT_EQ(s.entry_valid, 1u);
  EXPECT_EQ(s.attr_valid, 1u);
  // No KEEP_CACHE: pages are dropped at each open. No FLUSH at any close.
  EXPECT_EQ(s.open_flags, uint32_t{FOPEN_NOFLUSH});
  EXPECT_EQ(s.create_flags, uint32_t{FOPEN_NOFLUSH});
  EXPECT_EQ(s.opendir_flags, 0u);
}

TEST(FuseCachePolicy, NeverAsksTheHostEveryTime) {
  const Seen s = seen_with(CachePolicy::kNever);
  EXPECT_EQ(s.entry_valid, 0u);
  EXPECT_EQ(s.attr_valid, 0u);
  EXPECT_EQ(s.open_flags, uint32_t{FOPEN_DIRECT_IO | FOPEN_NOFLUSH});
  EXPECT_EQ(s.create_flags, uint32_t{FOPEN_DIRECT_IO | FOPEN_NOFLUSH});
  EXPECT_EQ(s.opendir_flags, 0u);
}

// A day's timeouts, pages and directory listings kept across opens.
void expect_kept(const Seen& s) {
  EXPECT_EQ(s.entry_valid, 86400u);
  EXPECT_EQ(s.attr_valid, 86400u);
  EXPECT_EQ(s.open_flags, uint32_t{FOPEN_KEEP_CACHE | FOPEN_NOFLUSH});
  EXPECT_EQ(s.create_flags, uint32_t{FOPEN_KEEP_CACHE | FOPEN_NOFLUSH});
  EXPECT_EQ(s.opendir_flags, uint32_t{FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE});
}

TEST(FuseCachePolicy, AlwaysKeepsPagesAndDirectories) {
  expect_kept(seen_with(CachePolicy::kAlways));
}

// A clone the guest works in: its own files are cached like 'always', but
// the host writes .git (ksbox sync commits there), so .git gets 'auto'.
TEST(FuseCachePolicy, WorktreeCachesTheTreeButNotGit) {
  expect_kept(seen_with(CachePolicy::kWorktree));
  EXPECT_FALSE(PassthroughOptions{}.with_cache(CachePolicy::kWorktree).writeback);  // the host reads every write

  TempDir d;
  std::filesystem::create_directories(d.path() / ".git" / "refs");
  write_file(d.path() / ".git" / "refs" / "main", "1234");
  std::filesystem::create_directories(d.path() / "src" / ".git");  // a nested repo's too
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init().error(), 0);
  const auto git = c.lookup(1, ".git");
  EXPECT_EQ(git.entry_valid, 1u);
  EXPECT_EQ(git.attr_valid, 1u);
  const auto refs = c.lookup(git.nodeid, "refs");
  const auto ref = c.lookup(refs.nodeid, "main");
  EXPECT_EQ(ref.entry_valid, 1u);
  EXPECT_EQ(ref.attr_valid, 1u);
  fuse_open_in oi{};
  oi.flags = O_RDONLY;
  EXPECT_EQ(c.send(FUSE_OPEN, ref.nodeid, Args().add(oi)).as<fuse_open_out>().open_flags, uint32_t{FOPEN_NOFLUSH});
  EXPECT_EQ(c.send(FUSE_OPENDIR, refs.nodeid, Args().add(fuse_open_in{})).as<fuse_open_out>().open_flags, 0u);
  fuse_getattr_in gi{};
  EXPECT_EQ(c.send(FUSE_GETATTR, ref.nodeid, Args().add(gi)).as<fuse_attr_out>().attr_valid, 1u);
  const auto src = c.lookup(1, "src");
  EXPECT_EQ(src.entry_valid, 86400u);
  EXPECT_EQ(c.send(FUSE_GETATTR, src.nodeid, Args().add(gi)).as<fuse_attr_out>().attr_valid, 86400u);
  EXPECT_EQ(c.lookup(src.nodeid, ".git").entry_valid, 1u);

  // Absent names: remembered in the tree (nodeid 0 with a timeout), asked
  // again every time inside .git, where the host adds objects and refs.
  int err = -1;
  const auto missing = c.lookup(src.nodeid, "absent.h", &err);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(missing.nodeid, 0u);
  EXPECT_EQ(missing.entry_valid, 86400u);
  c.lookup(refs.nodeid, "absent", &err);
  EXPECT_EQ(err, -ENOENT);
  c.lookup(1, "absent", &err);
  EXPECT_EQ(err, 0);
  TempDir bare;
  FuseClient no_git(bare.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(no_git.init().error(), 0);
  no_git.lookup(1, ".git", &err);  // a .git the host may create: not remembered as absent
  EXPECT_EQ(err, -ENOENT);
}

// auto keeps absent names for its 1 s, as it keeps names: untar looks up
// each name it creates twice.
TEST(FuseCachePolicy, AutoRemembersAbsentNamesForItsSecond) {
  TempDir d;
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kAuto));
  ASSERT_EQ(c.init().error(), 0);
  int err = -1;
  const auto missing = c.lookup(1, "absent", &err);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(missing.nodeid, 0u);
  EXPECT_EQ(missing.entry_valid, 1u);
  EXPECT_EQ(c.server.fs().inode_count(), 1u);  // nothing held for it
  // Other errors stay errors.
  write_file(d.path() / "file", "x");
  c.lookup(c.lookup(1, "file").nodeid, "below", &err);
  EXPECT_EQ(err, -ENOTDIR);
}

TEST(FuseCachePolicy, NeverAndAlwaysDoNotRememberAbsentNames) {
  for (const auto policy : {CachePolicy::kNever, CachePolicy::kAlways}) {
    TempDir d;
    FuseClient c(d.path(), PassthroughOptions{}.with_cache(policy));
    ASSERT_EQ(c.init().error(), 0);
    int err = 0;
    c.lookup(1, "absent", &err);
    EXPECT_EQ(err, -ENOENT);
  }
}

TEST(FuseCachePolicy, Parse) {
  EXPECT_EQ(parse_cache_policy("never"), CachePolicy::kNever);
  EXPECT_EQ(parse_cache_policy("auto"), CachePolicy::kAuto);
  EXPECT_EQ(parse_cache_policy("always"), CachePolicy::kAlways);
  EXPECT_EQ(parse_cache_policy("worktree"), CachePolicy::kWorktree);
  EXPECT_KSBOX_ERROR(parse_cache_policy("sometimes"), "valid values are never, auto, always, worktree");
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
