// The FUSE server against a temp directory: protocol and the common ops.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <set>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs {
namespace {

using testing::Args;
using testing::FuseClient;
using testing::list_dir;
using testing::Reply;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

class FuseServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(c.init().error(), 0); }
  TempDir dir;
  FuseClient c{dir.path()};
};

TEST(FuseServerInit, NegotiatesMinor) {
  TempDir d;
  FuseClient c(d.path());
  const Reply r = c.init(7, 38);
  ASSERT_EQ(r.error(), 0);
  const auto io = r.as<fuse_init_out>();
  EXPECT_EQ(io.major, 7u);
  EXPECT_EQ(io.minor, 38u);
  EXPECT_EQ(io.max_write, 1u << 20);
  EXPECT_EQ(io.max_readahead, 1u << 20);  // clamped from the guest's 4 MiB
  EXPECT_EQ(io.flags, uint32_t{FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES});
  EXPECT_EQ(io.max_pages, 256);
  EXPECT_TRUE(c.server.initialized());
}

TEST(FuseServerInit, OldAndNewMinors) {
  TempDir d;
  FuseClient old(d.path());
  const Reply r = old.init(7, 31, FUSE_ASYNC_READ | FUSE_POSIX_LOCKS);  // 16-byte fuse_init_in
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(r.as<fuse_init_out>().minor, 31u);
  EXPECT_EQ(r.as<fuse_init_out>().flags, uint32_t{FUSE_ASYNC_READ});  // no locks: not implemented
  FuseClient future(d.path());
  EXPECT_EQ(future.init(7, 99).as<fuse_init_out>().minor, uint32_t{FUSE_KERNEL_MINOR_VERSION});
}

TEST(FuseServerInit, RefusesBadMajorTooOldAndRequestsBeforeInit) {
  TempDir d;
  FuseClient c(d.path());
  EXPECT_EQ(c.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{})).error(), -EIO);
  EXPECT_EQ(c.count(Malformed::kNotInitialized), 1u);
  EXPECT_EQ(c.init(8, 38).error(), -EPROTO);
  EXPECT_EQ(c.init(6, 38).error(), -EPROTO);
  EXPECT_EQ(c.init(7, 20).error(), -EPROTO);
  EXPECT_EQ(c.count(Malformed::kBadInit), 3u);
  EXPECT_FALSE(c.server.initialized());
  EXPECT_EQ(c.init().error(), 0);
  EXPECT_EQ(c.init().error(), -EPROTO);  // a second INIT
  EXPECT_EQ(c.send(FUSE_DESTROY, 0).error(), 0);
  EXPECT_EQ(c.init().error(), 0);  // after DESTROY the device may start over
}

TEST_F(FuseServerTest, LookupAndGetattr) {
  write_file(dir.path() / "f", "hello");
  std::filesystem::create_directory(dir.path() / "d");
  const auto f = c.lookup(1, "f");
  EXPECT_NE(f.nodeid, 0u);
  EXPECT_TRUE(S_ISREG(f.attr.mode));
  EXPECT_EQ(f.attr.size, 5u);
  const auto d = c.lookup(1, "d");
  EXPECT_TRUE(S_ISDIR(d.attr.mode));
  EXPECT_EQ(c.lookup(1, "f").nodeid, f.nodeid);  // same inode, same nodeid
  int err = -1;
  const auto missing = c.lookup(1, "missing", &err);  // a negative entry (auto keeps it 1 s)
  EXPECT_EQ(err, 0);
  EXPECT_EQ(missing.nodeid, 0u);

  const Reply r = c.send(FUSE_GETATTR, d.nodeid, Args().add(fuse_getattr_in{}));
  ASSERT_EQ(r.error(), 0);
  struct stat st{};
  ASSERT_EQ(::stat((dir.path() / "d").c_str(), &st), 0);
  EXPECT_EQ(r.as<fuse_attr_out>().attr.ino, st.st_ino);
  EXPECT_EQ(r.as<fuse_attr_out>().attr.mode, st.st_mode);

  const Reply s = c.send(FUSE_STATFS, 1);
  ASSERT_EQ(s.error(), 0);
  EXPECT_GT(s.as<fuse_statfs_out>().st.bsize, 0u);
}

TEST_F(FuseServerTest, ForgetDropsTheInodeAndNeverUnderflows) {
  write_file(dir.path() / "f", "x");
  const uint64_t before = c.server.fs().inode_count();
  const auto f = c.lookup(1, "f");
  c.lookup(1, "f");
  fuse_forget_in fi{};
  fi.nlookup = 1;
  EXPECT_EQ(c.send(FUSE_FORGET, f.nodeid, Args().add(fi)).written, 0u);
  EXPECT_TRUE(c.server.fs().known(f.nodeid));
  fi.nlookup = 1000;  // more than was looked up
  c.send(FUSE_FORGET, f.nodeid, Args().add(fi));
  EXPECT_FALSE(c.server.fs().known(f.nodeid));
  EXPECT_EQ(c.count(Malformed::kForgetExcess), 1u);
  EXPECT_EQ(c.server.fs().inode_count(), before);
  // Batch forget with counts, an unknown id, and the root.
  const auto g = c.lookup(1, "f");
  fuse_batch_forget_in bf{};
  bf.count = 3;
  Args a;
  a.add(bf).add(fuse_forget_one{g.nodeid, 5}).add(fuse_forget_one{999, 1}).add(fuse_forget_one{1, 100});
  EXPECT_EQ(c.send(FUSE_BATCH_FORGET, 0, a).written, 0u);
  EXPECT_FALSE(c.server.fs().known(g.nodeid));
  EXPECT_TRUE(c.server.fs().known(1));
  EXPECT_EQ(c.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{})).error(), 0);
}

TEST_F(FuseServerTest, ReaddirWithOffsets) {
  for (int i = 0; i < 40; ++i) write_file(dir.path() / ("file-" + std::to_string(i)), "x");
  std::filesystem::create_directory(dir.path() / "sub");
  int calls = 0;
  const auto names = list_dir(c, 1, false, 256, &calls);
  EXPECT_EQ(names.size(), 43u);  // 40 files, sub, ".", ".."
  EXPECT_TRUE(names.contains("file-39"));
  EXPECT_TRUE(names.contains(".."));
  EXPECT_GT(calls, 3);  // several chunks, resumed by offset
  EXPECT_EQ(c.server.fs().handle_count(), 0u);
}

// rm -rf: entries are unlinked while the directory is being read. On tmpfs
// before Linux 6.6 a directory offset is a position, so a reader that seeks
// back to its offset after deletions skips entries; continuing where the
// last reply ended must not. Runs on /dev/shm (tmpfs) where there is one;
// the e2e tests cover it on the nested harness's 6.1 tmpfs.
TEST(FuseReaddir, UnlinkingWhileReadingSkipsNothing) {
  const bool shm = std::filesystem::is_directory("/dev/shm");
  if (!shm) std::printf("no /dev/shm: the tmpfs case is not covered here\n");
  TempDir d(shm ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path());
  for (int i = 0; i < 300; ++i) write_file(d.path() / ("entry-with-a-long-name-" + std::to_string(i)), "x");
  FuseClient c(d.path());
  ASSERT_EQ(c.init().error(), 0);
  int calls = 0;
  const auto names = list_dir(c, 1, false, 1024, &calls, [&](const std::string& n) {
    if (n != "." && n != "..") std::filesystem::remove(d.path() / n);
  });
  EXPECT_EQ(names.size(), 302u);
  EXPECT_GT(calls, 10);
  EXPECT_TRUE(std::filesystem::is_empty(d.path()));
}

TEST_F(FuseServerTest, ReaddirplusLooksUpEveryEntryButDots) {
  write_file(dir.path() / "a", "1234");
  std::filesystem::create_directory(dir.path() / "b");
  int calls = 0;
  const auto names = list_dir(c, 1, true, 4096, &calls);
  ASSERT_EQ(names.size(), 4u);
  EXPECT_EQ(names.at(".").nodeid, 0u);
  EXPECT_EQ(names.at("..").nodeid, 0u);
  const auto a = names.at("a");
  ASSERT_NE(a.nodeid, 0u);
  EXPECT_EQ(a.attr.size, 4u);
  EXPECT_EQ(c.server.fs().handle_count(), 0u);
  // The entry holds a lookup reference: one FORGET drops it.
  fuse_forget_in fi{};
  fi.nlookup = 1;
  c.send(FUSE_FORGET, a.nodeid, Args().add(fi));
  EXPECT_FALSE(c.server.fs().known(a.nodeid));
  EXPECT_EQ(c.count(Malformed::kForgetExcess), 0u);
}

TEST_F(FuseServerTest, ReadsAFileWrittenOnTheHost) {
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  write_file(dir.path() / "big", data);
  const auto f = c.lookup(1, "big");
  const uint64_t fh = c.open(f.nodeid, O_RDONLY);
  ASSERT_NE(fh, 0u);
  const Reply r = c.read(f.nodeid, fh, 1000, 131072);
  ASSERT_EQ(r.error(), 0);
  ASSERT_EQ(r.body.size(), 131072u);
  EXPECT_EQ(std::string(r.body.begin(), r.body.end()), data.substr(1000, 131072));
  const Reply tail = c.read(f.nodeid, fh, 299990, 100);
  EXPECT_EQ(tail.body.size(), 10u);  // short read at EOF
  fuse_flush_in fl{};
  fl.fh = fh;
  EXPECT_EQ(c.send(FUSE_FLUSH, f.nodeid, Args().add(fl)).error(), 0);
  fuse_fsync_in fs{};
  fs.fh = fh;
  EXPECT_EQ(c.send(FUSE_FSYNC, f.nodeid, Args().add(fs)).error(), 0);
  fuse_release_in rel{};
  rel.fh = fh;
  EXPECT_EQ(c.send(FUSE_RELEASE, f.nodeid, Args().add(rel)).error(), 0);
  EXPECT_EQ(c.send(FUSE_RELEASE, f.nodeid, Args().add(rel)).error(), -EBADF);
  EXPECT_EQ(c.read(f.nodeid, fh, 0, 10).error(), -EBADF);
}

TEST_F(FuseServerTest, CreateWriteVisibleOnHost) {
  fuse_create_in ci{};
  ci.flags = O_WRONLY | O_CREAT;
  ci.mode = S_IFREG | 0644;
  const Reply r = c.send(FUSE_CREATE, 1, Args().add(ci).str("new.txt"));
  ASSERT_EQ(r.error(), 0);
  const auto e = r.as<fuse_entry_out>();
  const auto o = r.as<fuse_open_out>(sizeof(fuse_entry_out));
  EXPECT_TRUE(S_ISREG(e.attr.mode));
  const Reply w = c.write(e.nodeid, o.fh, 0, "guest data");
  ASSERT_EQ(w.error(), 0);
  EXPECT_EQ(w.as<fuse_write_out>().size, 10u);
  EXPECT_EQ(read_file(dir.path() / "new.txt"), "guest data");
  // O_EXCL on an existing name fails; without it the file is opened.
  ci.flags = O_WRONLY | O_CREAT | O_EXCL;
  EXPECT_EQ(c.send(FUSE_CREATE, 1, Args().add(ci).str("new.txt")).error(), -EEXIST);
  ci.flags = O_RDWR | O_CREAT;
  EXPECT_EQ(c.send(FUSE_CREATE, 1, Args().add(ci).str("new.txt")).error(), 0);
  // Truncate through SETATTR.
  fuse_setattr_in si{};
  si.valid = FATTR_SIZE;
  si.size = 5;
  const Reply t = c.send(FUSE_SETATTR, e.nodeid, Args().add(si));
  ASSERT_EQ(t.error(), 0);
  EXPECT_EQ(t.as<fuse_attr_out>().attr.size, 5u);
  EXPECT_EQ(read_file(dir.path() / "new.txt"), "guest");
}

TEST_F(FuseServerTest, SetattrTimesAndMode) {
  write_file(dir.path() / "f", "x");
  const auto f = c.lookup(1, "f");
  fuse_setattr_in si{};
  si.valid = FATTR_MTIME | FATTR_ATIME | FATTR_MODE;
  si.mtime = 1000000000;
  si.mtimensec = 5;
  si.atime = 1200000000;
  si.mode = S_IFREG | 0600;
  const Reply r = c.send(FUSE_SETATTR, f.nodeid, Args().add(si));
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(r.as<fuse_attr_out>().attr.mtime, 1000000000u);
  struct stat st{};
  ASSERT_EQ(::stat((dir.path() / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 5);
  EXPECT_EQ(st.st_atim.tv_sec, 1200000000);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(FuseServerTest, MkdirUnlinkRmdir) {
  fuse_mkdir_in mi{};
  mi.mode = 0755;
  const Reply m = c.send(FUSE_MKDIR, 1, Args().add(mi).str("dir"));
  ASSERT_EQ(m.error(), 0);
  const uint64_t d = m.as<fuse_entry_out>().nodeid;
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() / "dir"));
  write_file(dir.path() / "dir" / "f", "x");
  EXPECT_EQ(c.send(FUSE_RMDIR, 1, Args().str("dir")).error(), -ENOTEMPTY);
  EXPECT_EQ(c.send(FUSE_UNLINK, d, Args().str("f")).error(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "dir" / "f"));
  EXPECT_EQ(c.send(FUSE_UNLINK, 1, Args().str("dir")).error(), -EISDIR);
  EXPECT_EQ(c.send(FUSE_RMDIR, 1, Args().str("dir")).error(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "dir"));
}

TEST_F(FuseServerTest, RenameVariants) {
  write_file(dir.path() / "a", "A");
  write_file(dir.path() / "b", "B");
  std::filesystem::create_directory(dir.path() / "sub");
  const uint64_t sub = c.lookup(1, "sub").nodeid;
  fuse_rename2_in r2{};
  r2.newdir = 1;
  r2.flags = RENAME_NOREPLACE;
  EXPECT_EQ(c.send(FUSE_RENAME2, 1, Args().add(r2).str("a").str("b")).error(), -EEXIST);
  r2.flags = RENAME_EXCHANGE;
  EXPECT_EQ(c.send(FUSE_RENAME2, 1, Args().add(r2).str("a").str("b")).error(), 0);
  EXPECT_EQ(read_file(dir.path() / "a"), "B");
  EXPECT_EQ(read_file(dir.path() / "b"), "A");
  r2.flags = RENAME_WHITEOUT;
  EXPECT_EQ(c.send(FUSE_RENAME2, 1, Args().add(r2).str("a").str("b")).error(), -EINVAL);
  fuse_rename_in r{};
  r.newdir = sub;
  EXPECT_EQ(c.send(FUSE_RENAME, 1, Args().add(r).str("a").str("moved")).error(), 0);
  EXPECT_EQ(read_file(dir.path() / "sub" / "moved"), "B");
  r.newdir = 12345;
  EXPECT_EQ(c.send(FUSE_RENAME, 1, Args().add(r).str("b").str("x")).error(), -ESTALE);
}

TEST_F(FuseServerTest, SymlinkReadlinkLink) {
  const Reply s = c.send(FUSE_SYMLINK, 1, Args().str("ln").str("../../etc/passwd"));
  ASSERT_EQ(s.error(), 0);
  const auto e = s.as<fuse_entry_out>();
  EXPECT_TRUE(S_ISLNK(e.attr.mode));
  const Reply r = c.send(FUSE_READLINK, e.nodeid);
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(std::string(r.body.begin(), r.body.end()), "../../etc/passwd");
  write_file(dir.path() / "f", "x");
  const auto f = c.lookup(1, "f");
  fuse_link_in li{};
  li.oldnodeid = f.nodeid;
  const Reply l = c.send(FUSE_LINK, 1, Args().add(li).str("f2"));
  ASSERT_EQ(l.error(), 0);
  EXPECT_EQ(l.as<fuse_entry_out>().nodeid, f.nodeid);
  EXPECT_EQ(l.as<fuse_entry_out>().attr.nlink, 2u);
}

TEST_F(FuseServerTest, UnknownOpcodesAnswerEnosys) {
  EXPECT_EQ(c.send(FUSE_SETLKW, 1, Args().add(fuse_lk_in{})).error(), -ENOSYS);  // locks stay guest-local
  EXPECT_EQ(c.send(FUSE_IOCTL, 1, Args().add(fuse_ioctl_in{})).error(), -ENOSYS);
  EXPECT_EQ(c.send(9999, 1).error(), -ENOSYS);
  EXPECT_EQ(c.server.stats().unsupported, 3u);
}

TEST_F(FuseServerTest, CountsRequestsByOpcode) {
  write_file(dir.path() / "f", "x");
  const FuseStats before = c.server.stats();  // INIT in SetUp
  EXPECT_EQ(before.ops[FUSE_INIT].count, 1u);
  c.lookup(1, "f");
  c.lookup(1, "f");
  c.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{}));
  c.send(9999, 1);  // beyond the named opcodes: the last slot
  fuse_forget_in fi{};
  c.send(FUSE_FORGET, 1, Args().add(fi));  // no reply, still counted
  const FuseStats& st = c.server.stats();
  EXPECT_EQ(st.ops[FUSE_LOOKUP].count, 2u);
  EXPECT_EQ(st.ops[FUSE_GETATTR].count, 1u);
  EXPECT_EQ(st.ops[FUSE_FORGET].count, 1u);
  EXPECT_EQ(st.ops[FuseStats::kOpSlots - 1].count, 1u);
  EXPECT_GT(st.ops[FUSE_LOOKUP].ns, 0u);
  EXPECT_STREQ(fuse_opcode_name(FUSE_LOOKUP), "LOOKUP");
  EXPECT_EQ(fuse_opcode_name(9999), nullptr);
  FuseStats sum = st;
  sum += st;
  EXPECT_EQ(sum.ops[FUSE_LOOKUP].count, 4u);
  EXPECT_EQ(sum.ops[FUSE_LOOKUP].timed, 2u);
  EXPECT_EQ(sum.requests, 2 * st.requests);
}

TEST_F(FuseServerTest, TimesEveryNthRequestOfAnOpcodeAndEstimatesTheRest) {
  constexpr uint64_t kSent = 2 * FuseStats::kTimeEvery + 1;
  for (uint64_t i = 0; i < kSent; ++i) ASSERT_EQ(c.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{})).error(), 0);
  const FuseStats::Op& op = c.server.stats().ops[FUSE_GETATTR];
  EXPECT_EQ(op.count, kSent);
  EXPECT_EQ(op.timed, 3u);  // the first, the (N+1)th and the last
  ASSERT_GT(op.ns, 0u);
  EXPECT_NEAR(static_cast<double>(op.est_ns()), static_cast<double>(op.ns) * kSent / 3, 1.0);
  EXPECT_EQ(FuseStats::Op{}.est_ns(), 0u);  // nothing timed: no estimate, no division by zero
}

}  // namespace
}  // namespace ksbox::devices::fs
