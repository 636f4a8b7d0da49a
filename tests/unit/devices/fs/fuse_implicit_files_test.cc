// Files used without OPEN (FUSE_NO_OPEN_SUPPORT): which policies allow it,
// I/O with fh 0 through per-node streams, what is never opened, appends,
// truncating creates, and streams that end with the node or give way.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs::testing {
namespace {

constexpr uint32_t kGuestFlags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_ATOMIC_O_TRUNC | FUSE_NO_OPEN_SUPPORT;

std::string text(const Reply& r) { return {r.body.begin(), r.body.end()}; }

Reply write_flags(FuseClient& c, uint64_t node, uint64_t off, std::string_view data, uint32_t flags) {
  fuse_write_in wi{};
  wi.offset = off;
  wi.size = static_cast<uint32_t>(data.size());
  wi.flags = flags;
  return c.send(FUSE_WRITE, node, Args().add(wi).raw(data));
}

TEST(FuseImplicitFiles, WorktreeAndAlwaysUseFilesWithoutOpen) {
  for (const auto policy : {CachePolicy::kWorktree, CachePolicy::kAlways}) {
    TempDir d;
    write_file(d.path() / "f", "hello");
    FuseClient c(d.path(), PassthroughOptions{}.with_cache(policy));
    const Reply init = c.init(7, 38, kGuestFlags);
    ASSERT_EQ(init.error(), 0);
    EXPECT_TRUE(c.server.fs().implicit_files());
    // No OPEN to truncate: O_TRUNC must come as a SETATTR.
    EXPECT_EQ(init.as<fuse_init_out>().flags & FUSE_ATOMIC_O_TRUNC, 0u);
    const uint64_t f = c.lookup(1, "f").nodeid;
    int err = 0;
    c.open(f, O_RDONLY, &err);
    EXPECT_EQ(err, -ENOSYS);
    fuse_flush_in fl{};
    EXPECT_EQ(c.send(FUSE_FLUSH, f, Args().add(fl)).error(), -ENOSYS);
    const Reply r = c.read(f, 0, 0, 100);
    ASSERT_EQ(r.error(), 0);
    EXPECT_EQ(text(r), "hello");
    EXPECT_EQ(c.write(f, 0, 5, ", world").error(), 0);
    EXPECT_EQ(read_file(d.path() / "f"), "hello, world");
    fuse_fsync_in fs{};
    EXPECT_EQ(c.send(FUSE_FSYNC, f, Args().add(fs)).error(), 0);
    fuse_lseek_in li{};
    li.whence = SEEK_END;
    const Reply end = c.send(FUSE_LSEEK, f, Args().add(li));
    ASSERT_EQ(end.error(), 0);
    EXPECT_EQ(end.as<fuse_lseek_out>().offset, 12u);
    EXPECT_EQ(c.server.fs().handle_count(), 0u);
    EXPECT_EQ(c.server.fs().file_stream_count(), 1u);
  }
}

// auto and never drop pages at every open, which a guest without OPEN
// would not; and a guest that does not offer it opens files as ever.
TEST(FuseImplicitFiles, OtherwiseFilesAreOpened) {
  for (const auto& [policy, flags] : {std::pair{CachePolicy::kAuto, kGuestFlags}, {CachePolicy::kNever, kGuestFlags},
                                      {CachePolicy::kWorktree, kGuestFlags & ~uint32_t{FUSE_NO_OPEN_SUPPORT}}}) {
    TempDir d;
    write_file(d.path() / "f", "x");
    FuseClient c(d.path(), PassthroughOptions{}.with_cache(policy));
    const Reply init = c.init(7, 38, flags);
    ASSERT_EQ(init.error(), 0);
    EXPECT_FALSE(c.server.fs().implicit_files());
    EXPECT_NE(init.as<fuse_init_out>().flags & FUSE_ATOMIC_O_TRUNC, 0u);
    const uint64_t f = c.lookup(1, "f").nodeid;
    int err = 0;
    const uint64_t fh = c.open(f, O_RDONLY, &err);
    EXPECT_EQ(err, 0);
    EXPECT_NE(fh, 0u);
    EXPECT_EQ(c.read(f, 0, 0, 10).error(), -EBADF);  // fh 0 is no file here
  }
}

TEST(FuseImplicitFiles, CreatedFilesAnswerFh0AndKeepTheirFdAsStream) {
  TempDir d;
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  // Created write-only, as tar does: the stream can read it back too.
  const auto [e, fh] = c.create(1, "new", O_WRONLY | O_CREAT | O_EXCL);
  ASSERT_NE(e.nodeid, 0u);
  EXPECT_EQ(fh, 0u);
  EXPECT_EQ(c.write(e.nodeid, 0, 0, "data").error(), 0);
  EXPECT_EQ(text(c.read(e.nodeid, 0, 0, 10)), "data");
  EXPECT_EQ(read_file(d.path() / "new"), "data");
  // An unnamed file (O_TMPFILE) too.
  int err = 0;
  const auto [t, tfh] = c.create(1, "", O_RDWR, S_IFREG | 0600, &err, FUSE_TMPFILE);
  ASSERT_EQ(err, 0);
  EXPECT_EQ(tfh, 0u);
  EXPECT_EQ(c.write(t.nodeid, 0, 0, "tmp").error(), 0);
  EXPECT_EQ(text(c.read(t.nodeid, 0, 0, 10)), "tmp");
  EXPECT_EQ(c.server.fs().handle_count(), 0u);
  EXPECT_EQ(c.server.fs().file_stream_count(), 2u);
}

TEST(FuseImplicitFiles, CreateOfAnExistingNameTruncatesWhenAsked) {
  TempDir d;
  write_file(d.path() / "old", "old contents");
  write_file(d.path() / "kept", "kept contents");
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  const auto [e, fh] = c.create(1, "old", O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_NE(e.nodeid, 0u);
  EXPECT_EQ(fh, 0u);
  EXPECT_EQ(read_file(d.path() / "old"), "");
  const auto [k, kfh] = c.create(1, "kept", O_RDONLY | O_CREAT);
  ASSERT_NE(k.nodeid, 0u);
  EXPECT_EQ(text(c.read(k.nodeid, 0, 0, 100)), "kept contents");
}

// A stream is not O_APPEND: the guest's O_APPEND (in WRITE's flags) puts
// the data at the host's end, wherever the guest thought the end was.
TEST(FuseImplicitFiles, AppendsGoToTheHostsEndOfFile) {
  TempDir d;
  write_file(d.path() / "log", "one\n");
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  const uint64_t f = c.lookup(1, "log").nodeid;
  std::ofstream(d.path() / "log", std::ios::app) << "two (host)\n";
  const Reply r = write_flags(c, f, 4, "three\n", O_WRONLY | O_APPEND);
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(r.as<fuse_write_out>().size, 6u);
  EXPECT_EQ(read_file(d.path() / "log"), "one\ntwo (host)\nthree\n");
  EXPECT_EQ(write_flags(c, f, 0, "ONE\n", O_WRONLY).error(), 0);  // without it, at the offset
  EXPECT_EQ(read_file(d.path() / "log"), "ONE\ntwo (host)\nthree\n");
}

// A hostile guest may send I/O with fh 0 for any node it knows: FIFOs,
// directories and symlinks are refused, never opened (a FIFO would block).
TEST(FuseImplicitFiles, NeverOpensWhatIsNotARegularFile) {
  TempDir d;
  ASSERT_EQ(::mkfifo((d.path() / "fifo").c_str(), 0644), 0);
  std::filesystem::create_directory(d.path() / "dir");
  std::filesystem::create_symlink("dir", d.path() / "link");
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  EXPECT_EQ(c.read(c.lookup(1, "fifo").nodeid, 0, 0, 10).error(), -EACCES);
  EXPECT_EQ(c.write(c.lookup(1, "fifo").nodeid, 0, 0, "x").error(), -EACCES);
  EXPECT_EQ(c.read(c.lookup(1, "dir").nodeid, 0, 0, 10).error(), -EISDIR);
  EXPECT_EQ(c.read(c.lookup(1, "link").nodeid, 0, 0, 10).error(), -ELOOP);
  EXPECT_NE(c.read(12345, 0, 0, 10).error(), 0);
  EXPECT_EQ(c.server.fs().file_stream_count(), 0u);
}

TEST(FuseImplicitFiles, ReadOnlyShareReadsButNeverWrites) {
  TempDir d;
  write_file(d.path() / "f", "ro");
  PassthroughOptions o = PassthroughOptions{}.with_cache(CachePolicy::kWorktree);
  o.read_only = true;
  FuseClient c(d.path(), o);
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  const uint64_t f = c.lookup(1, "f").nodeid;
  EXPECT_EQ(text(c.read(f, 0, 0, 10)), "ro");
  EXPECT_EQ(c.write(f, 0, 0, "rw").error(), -EROFS);
  fuse_fallocate_in fa{};
  fa.length = 10;
  EXPECT_EQ(c.send(FUSE_FALLOCATE, f, Args().add(fa)).error(), -EROFS);
  EXPECT_EQ(read_file(d.path() / "f"), "ro");
}

// The stream of a node the guest forgot goes with it: its fd would keep an
// unlinked file's blocks on the host.
TEST(FuseImplicitFiles, ForgottenNodeLosesItsStream) {
  TempDir d;
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  const auto [e, fh] = c.create(1, "gone", O_WRONLY | O_CREAT | O_EXCL);
  ASSERT_NE(e.nodeid, 0u);
  EXPECT_EQ(c.write(e.nodeid, 0, 0, "bytes").error(), 0);
  EXPECT_EQ(c.send(FUSE_UNLINK, 1, Args().str("gone")).error(), 0);
  // Unlinked but still held by the guest: still readable.
  EXPECT_EQ(text(c.read(e.nodeid, 0, 0, 10)), "bytes");
  EXPECT_EQ(c.server.fs().file_stream_count(), 1u);
  fuse_forget_in fo{};
  fo.nlookup = 1;
  c.send(FUSE_FORGET, e.nodeid, Args().add(fo));
  EXPECT_EQ(c.server.fs().file_stream_count(), 0u);
  EXPECT_EQ(c.server.fs().open_inode_fds(), 0u);
}

// The host may refuse a direction even to root: a running binary cannot be
// opened for writing (ETXTBSY). Its stream is then read-only, and a write
// asks the host again, which succeeds once the binary no longer runs.
TEST(FuseImplicitFiles, AStreamTheHostMadeOneWayIsOpenedAgainToWrite) {
  TempDir d;
  std::filesystem::copy_file("/bin/sleep", d.path() / "prog");
  std::filesystem::permissions(d.path() / "prog", std::filesystem::perms::owner_all);
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kWorktree));
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  const uint64_t f = c.lookup(1, "prog").nodeid;
  const std::string path = (d.path() / "prog").string();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(path.c_str(), "prog", "30", nullptr);
    ::_exit(127);
  }
  // Running once /proc shows the new image.
  for (int i = 0; i < 500 && std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe") != path; ++i)
    ::usleep(10'000);
  EXPECT_EQ(c.read(f, 0, 0, 4).body.size(), 4u);  // "" "ELF"
  EXPECT_EQ(c.write(f, 0, 0, "x").error(), -ETXTBSY);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(c.write(f, 0, 0, "X").error(), 0);
  EXPECT_EQ(read_file(d.path() / "prog").substr(0, 4), "XELF");
}

// Streams share the handle budget and give way, oldest first; a file whose
// stream went is opened again at its next use.
TEST(FuseImplicitFiles, StreamsStayWithinTheHandleBudget) {
  TempDir d;
  for (int i = 0; i < 40; ++i) write_file(d.path() / ("f" + std::to_string(i)), std::to_string(i));
  PassthroughOptions o = PassthroughOptions{}.with_cache(CachePolicy::kWorktree);
  o.max_handles = 8;
  FuseClient c(d.path(), o);
  ASSERT_EQ(c.init(7, 38, kGuestFlags).error(), 0);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 40; ++i) {
      const uint64_t f = c.lookup(1, "f" + std::to_string(i)).nodeid;
      EXPECT_EQ(text(c.read(f, 0, 0, 10)), std::to_string(i));
      EXPECT_LE(c.server.fs().file_stream_count(), 8u);
    }
  }
  // A copy between two files: the source's stream is not the one that goes.
  const uint64_t a = c.lookup(1, "f1").nodeid, b = c.lookup(1, "f2").nodeid;
  fuse_copy_file_range_in ci{};
  ci.nodeid_out = b;
  ci.len = 1;
  const Reply r = c.send(FUSE_COPY_FILE_RANGE, a, Args().add(ci));
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(read_file(d.path() / "f2"), "1");
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
