// Directories read without OPENDIR (FUSE_NO_OPENDIR_SUPPORT): which
// policies allow it, READDIR/FSYNCDIR with fh 0, several listings read at
// once while entries go, and the mtime a recent .git directory shows.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>

#include <filesystem>
#include <set>
#include <string>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs::testing {
namespace {

constexpr uint32_t kGuestFlags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_NO_OPENDIR_SUPPORT;

// One READDIRPLUS of `node` with fh 0 from `off`: the names, and where to
// go on from (`off` unchanged at the end).
struct Chunk {
  int error = 0;
  std::vector<std::string> names;
  uint64_t next = 0;
};
Chunk read_chunk(FuseClient& c, uint64_t node, uint64_t off, uint32_t size = 1024, uint32_t opcode = FUSE_READDIRPLUS) {
  fuse_read_in ri{};
  ri.offset = off;
  ri.size = size;
  const Reply r = c.send(opcode, node, Args().add(ri));
  Chunk ch{r.error(), {}, off};
  for (size_t pos = 0; pos < r.body.size();) {
    if (opcode == FUSE_READDIRPLUS) pos += sizeof(fuse_entry_out);
    fuse_dirent de{};
    std::memcpy(&de, r.body.data() + pos, FUSE_NAME_OFFSET);
    std::string name(reinterpret_cast<const char*>(r.body.data() + pos + FUSE_NAME_OFFSET), de.namelen);
    pos += FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de.namelen);
    if (name != "." && name != "..") ch.names.push_back(std::move(name));
    ch.next = de.off;
  }
  return ch;
}

int opendir_error(FuseClient& c, uint64_t node) {
  return c.send(FUSE_OPENDIR, node, Args().add(fuse_open_in{})).error();
}

void make_files(const std::filesystem::path& dir, int n) {
  std::filesystem::create_directories(dir);
  for (int i = 0; i < n; ++i) write_file(dir / ("file-with-a-longish-name-" + std::to_string(i)), "x");
}

TEST(FuseImplicitDirs, WorktreeAndAlwaysListWithoutOpendir) {
  for (const auto policy : {CachePolicy::kWorktree, CachePolicy::kAlways}) {
    TempDir d;
    make_files(d.path(), 3);
    FuseClient c(d.path(), PassthroughOptions{}.with_cache(policy));
    ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
    EXPECT_TRUE(c.server.fs().implicit_dirs());
    EXPECT_EQ(opendir_error(c, 1), -ENOSYS);
    EXPECT_EQ(c.server.fs().handle_count(), 0u);
    const Chunk ch = read_chunk(c, 1, 0, 4096);
    EXPECT_EQ(ch.error, 0);
    EXPECT_EQ(ch.names.size(), 3u);
    EXPECT_TRUE(read_chunk(c, 1, ch.next, 4096).names.empty());  // the end
    EXPECT_EQ(read_chunk(c, 1, 0, 4096, FUSE_READDIR).names.size(), 3u);  // from the start again
    fuse_fsync_in fi{};
    EXPECT_EQ(c.send(FUSE_FSYNCDIR, 1, Args().add(fi)).error(), 0);
    // Not a directory, not a node: refused, nothing kept for them.
    const uint64_t file = c.lookup(1, "file-with-a-longish-name-0").nodeid;
    EXPECT_EQ(read_chunk(c, file, 0).error, -ENOTDIR);
    EXPECT_NE(read_chunk(c, 12345, 0).error, 0);
    EXPECT_EQ(c.send(FUSE_FSYNCDIR, 12345, Args().add(fi)).error() != 0, true);
    EXPECT_EQ(c.server.fs().dir_stream_count(), 1u);
  }
}

// The stream of a directory the guest forgot goes with it: its fd would
// keep a removed directory on the host.
TEST(FuseImplicitDirs, ForgottenDirectoryLosesItsStream) {
  TempDir d;
  make_files(d.path() / "sub", 2);
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  const uint64_t sub = c.lookup(1, "sub").nodeid;
  ASSERT_NE(sub, 0u);
  // READDIR, not READDIRPLUS: no entry may hold `sub` (or hold on to it).
  EXPECT_EQ(read_chunk(c, sub, 0, 1024, FUSE_READDIR).names.size(), 2u);
  EXPECT_EQ(read_chunk(c, 1, 0, 1024, FUSE_READDIR).error, 0);
  EXPECT_EQ(c.server.fs().dir_stream_count(), 2u);
  fuse_forget_in fo{};
  fo.nlookup = 1;
  c.send(FUSE_FORGET, sub, Args().add(fo));
  EXPECT_EQ(c.server.fs().dir_stream_count(), 1u);  // the root's stays
  EXPECT_NE(read_chunk(c, sub, 0, 1024, FUSE_READDIR).error, 0);
  EXPECT_EQ(read_chunk(c, 1, 0, 1024, FUSE_READDIR).names.size(), 1u);
}

// auto and never keep no listing, which a guest without OPENDIR would; and
// a guest that does not offer it opens directories as ever.
TEST(FuseImplicitDirs, OtherwiseOpendirStays) {
  struct Case {
    CachePolicy policy;
    uint32_t guest_flags;
  };
  for (const Case k : {Case{CachePolicy::kAuto, kGuestFlags}, Case{CachePolicy::kNever, kGuestFlags},
                       Case{CachePolicy::kWorktree, kGuestFlags & ~FUSE_NO_OPENDIR_SUPPORT},
                       Case{CachePolicy::kAlways, kGuestFlags & ~FUSE_NO_OPENDIR_SUPPORT}}) {
    TempDir d;
    FuseClient c(d.path(), PassthroughOptions{}.with_cache(k.policy));
    ASSERT_EQ(c.init(7, 38, k.guest_flags).error(), 0);
    EXPECT_FALSE(c.server.fs().implicit_dirs());
    EXPECT_EQ(opendir_error(c, 1), 0);
    EXPECT_EQ(read_chunk(c, 1, 0).error, -EBADF);  // fh 0 is no handle
    fuse_fsync_in fi{};
    EXPECT_EQ(c.send(FUSE_FSYNCDIR, 1, Args().add(fi)).error(), -EBADF);
  }
}

// rm -rf and find read a directory, then its subdirectories, then go on in
// the first. Each listing continues where it stopped, although entries
// listed before are gone (on tmpfs before Linux 6.6 an offset is a
// position: a seek would skip names), and with more directories open at
// once than the server keeps streams for.
TEST(FuseImplicitDirs, InterleavedListingsMissNothing) {
  TempDir d;
  constexpr int kDirs = 70, kFiles = 60;
  for (int i = 0; i < kDirs; ++i) make_files(d.path() / ("d" + std::to_string(i)), kFiles);
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  ASSERT_EQ(opendir_error(c, 1), -ENOSYS);
  std::vector<uint64_t> node(kDirs), off(kDirs, 0);
  std::vector<std::set<std::string>> seen(kDirs);
  for (int i = 0; i < kDirs; ++i) node[i] = c.lookup(1, "d" + std::to_string(i)).nodeid;
  // The first 8 directories are read while the guest deletes what it got.
  bool more = true;
  while (more) {
    more = false;
    for (int i = 0; i < kDirs; ++i) {
      const Chunk ch = read_chunk(c, node[i], off[i]);
      ASSERT_EQ(ch.error, 0);
      for (const auto& n : ch.names) {
        EXPECT_TRUE(seen[i].insert(n).second) << "d" << i << "/" << n << " listed twice";
        if (i < 8) {
          EXPECT_EQ(c.send(FUSE_UNLINK, node[i], Args().str(n)).error(), 0);
        }
      }
      more |= !ch.names.empty();
      off[i] = ch.next;
    }
  }
  for (int i = 0; i < kDirs; ++i) EXPECT_EQ(seen[i].size(), size_t{kFiles}) << "d" << i;
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(std::filesystem::is_empty(d.path() / ("d" + std::to_string(i))));
  EXPECT_EQ(c.server.fs().dir_stream_count(), 64u);  // bounded
}

// Streams hold host fds as handles do, so they count against the same
// table: the oldest gives way to an open, and with the table full of open
// files a listing is refused (ENFILE), never an fd over the budget.
TEST(FuseImplicitDirs, StreamsShareTheHandleBudget) {
  TempDir d;
  for (int i = 0; i < 4; ++i) make_files(d.path() / ("d" + std::to_string(i)), 1);
  write_file(d.path() / "f", "x");
  PassthroughOptions opts = PassthroughOptions{}.with_cache(CachePolicy::kWorktree);
  opts.max_handles = 4;
  FuseClient c(d.path(), opts);
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  std::vector<uint64_t> dirs;
  for (int i = 0; i < 4; ++i) dirs.push_back(c.lookup(1, "d" + std::to_string(i)).nodeid);
  for (const uint64_t n : dirs) EXPECT_EQ(read_chunk(c, n, 0).error, 0);
  EXPECT_EQ(c.server.fs().dir_stream_count(), 4u);
  const uint64_t f = c.lookup(1, "f").nodeid;
  for (int i = 0; i < 4; ++i) {
    int err = -1;
    EXPECT_NE(c.open(f, O_RDONLY, &err), 0u);
    EXPECT_EQ(err, 0);
    EXPECT_EQ(c.server.fs().handle_count() + c.server.fs().dir_stream_count(), 4u);
  }
  EXPECT_EQ(c.server.fs().dir_stream_count(), 0u);
  EXPECT_EQ(read_chunk(c, dirs[0], 0).error, -ENFILE);
}

struct AttrSeen {
  uint64_t attr_valid;
  timespec mtime;
};
AttrSeen getattr_of(FuseClient& c, uint64_t node) {
  const auto a = c.send(FUSE_GETATTR, node, Args().add(fuse_getattr_in{})).as<fuse_attr_out>();
  return {a.attr_valid, {static_cast<time_t>(a.attr.mtime), static_cast<long>(a.attr.mtimensec)}};
}
int64_t ns(const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }
timespec minus_1ns(timespec t) { return t.tv_nsec ? timespec{t.tv_sec, t.tv_nsec - 1} : timespec{t.tv_sec - 1, 999'999'999}; }

void set_mtime(const std::filesystem::path& p, timespec t) {
  const timespec times[2] = {t, t};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
}

// A .git directory whose mtime a host change could still leave as it is (a
// future one here: the test cannot count on being within the tick of a
// change) shows an mtime 1 ns early; one past that, the real one. Both
// with auto's second.
TEST(FuseImplicitDirs, RecentGitDirectoryMtimeIsHeldBack) {
  TempDir d;
  make_files(d.path() / ".git" / "refs", 1);
  make_files(d.path() / "src", 1);
  const auto refs_dir = d.path() / ".git" / "refs";
  const timespec future{::time(nullptr) + 3600, 7}, past{::time(nullptr) - 3600, 5};
  set_mtime(refs_dir, future);
  set_mtime(d.path() / "src", future);
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  const auto git = c.lookup(1, ".git");
  const auto refs = c.lookup(git.nodeid, "refs");
  EXPECT_EQ(refs.attr_valid, 1u);
  EXPECT_EQ(ns({static_cast<time_t>(refs.attr.mtime), static_cast<long>(refs.attr.mtimensec)}),
            ns(minus_1ns(future)));
  AttrSeen a = getattr_of(c, refs.nodeid);
  EXPECT_EQ(a.attr_valid, 1u);
  EXPECT_EQ(ns(a.mtime), ns(minus_1ns(future)));
  // The same in a listing of .git.
  bool found = false;
  fuse_read_in ri{};
  ri.size = 4096;
  const Reply r = c.send(FUSE_READDIRPLUS, git.nodeid, Args().add(ri));
  for (size_t pos = 0; pos < r.body.size();) {
    fuse_entry_out e{};
    std::memcpy(&e, r.body.data() + pos, sizeof e);
    fuse_dirent de{};
    std::memcpy(&de, r.body.data() + pos + sizeof e, FUSE_NAME_OFFSET);
    if (std::string_view(reinterpret_cast<const char*>(r.body.data() + pos + sizeof e + FUSE_NAME_OFFSET),
                         de.namelen) == "refs") {
      found = true;
      EXPECT_EQ(e.attr_valid, 1u);
      EXPECT_EQ(e.attr.mtimensec, 6u);
    }
    pos += sizeof e + FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de.namelen);
  }
  EXPECT_TRUE(found);
  // Whole seconds, from a file system that may keep no more: recent for 2 s.
  set_mtime(refs_dir, {::time(nullptr) - 1, 0});
  EXPECT_EQ(ns(getattr_of(c, refs.nodeid).mtime), ns(minus_1ns({::time(nullptr) - 1, 0})));
  set_mtime(refs_dir, {::time(nullptr) - 60, 0});
  EXPECT_EQ(getattr_of(c, refs.nodeid).attr_valid, 1u);

  // An hour old: as it is.
  set_mtime(refs_dir, past);
  a = getattr_of(c, refs.nodeid);
  EXPECT_EQ(a.attr_valid, 1u);
  EXPECT_EQ(ns(a.mtime), ns(past));
  // Files in .git, and directories outside it, are never held back.
  const auto src = c.lookup(1, "src");
  EXPECT_EQ(src.attr_valid, 86400u);
  EXPECT_EQ(ns(getattr_of(c, src.nodeid).mtime), ns(future));
  const auto ref = c.lookup(refs.nodeid, "file-with-a-longish-name-0");
  set_mtime(refs_dir / "file-with-a-longish-name-0", future);
  EXPECT_EQ(ns(getattr_of(c, ref.nodeid).mtime), ns(future));
  EXPECT_EQ(getattr_of(c, ref.nodeid).attr_valid, 1u);

  // Without listings kept (the guest reads through OPENDIR), nothing to hold back.
  set_mtime(d.path() / ".git", future);
  FuseClient opened(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(opened.init().error(), 0);
  const auto g = opened.lookup(1, ".git");
  EXPECT_EQ(g.attr_valid, 1u);
  EXPECT_EQ(ns(getattr_of(opened, g.nodeid).mtime), ns(future));
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
