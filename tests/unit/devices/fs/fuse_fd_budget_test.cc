// The server with a tiny O_PATH fd budget (16) serving thousands of inodes
// through FUSE requests: the process's open fd count stays bounded, and
// every answer stays right while inodes are evicted and re-opened by name,
// renamed and unlinked through the server, or changed on the host (ESTALE).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs::testing {
namespace {

namespace stdfs = std::filesystem;

constexpr size_t kFdBudget = 16;

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : stdfs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

PassthroughOptions tiny_budget() {
  PassthroughOptions o;
  o.max_fds = kFdBudget;
  o.max_handles = 8;
  return o;
}

class FdBudget : public ::testing::Test {
 protected:
  void SetUp() override {
    c = std::make_unique<FuseClient>(d.path(), tiny_budget());
    ASSERT_EQ(c->init().error(), 0);
    baseline = open_fds();
  }
  // What the server may hold beyond the baseline: the O_PATH cache, one
  // handle open by the test, and the directory_iterator of open_fds().
  void expect_bounded() {
    EXPECT_LE(open_fds(), baseline + kFdBudget + 2);
    EXPECT_LE(c->server.fs().open_inode_fds(), kFdBudget);
  }
  fuse_attr attr(uint64_t node, int* err = nullptr, std::optional<uint64_t> fh = std::nullopt) {
    fuse_getattr_in gi{};
    if (fh) {
      gi.getattr_flags = FUSE_GETATTR_FH;
      gi.fh = *fh;
    }
    const Reply r = c->send(FUSE_GETATTR, node, Args().add(gi));
    if (err) *err = r.error();
    return r.error() ? fuse_attr{} : r.as<fuse_attr_out>().attr;
  }
  std::string read_all(uint64_t node) {
    int err = 0;
    const uint64_t fh = c->open(node, O_RDONLY, &err);
    if (err) return "open error " + std::to_string(err);
    const Reply r = c->read(node, fh, 0, 4096);
    fuse_release_in ri{};
    ri.fh = fh;
    EXPECT_EQ(c->send(FUSE_RELEASE, node, Args().add(ri)).error(), 0);
    if (r.error()) return "read error " + std::to_string(r.error());
    return {r.body.begin(), r.body.end()};
  }
  int rename(uint64_t from, const std::string& a, uint64_t to, const std::string& b) {
    fuse_rename2_in ri{};
    ri.newdir = to;
    return c->send(FUSE_RENAME2, from, Args().add(ri).str(a).str(b)).error();
  }
  int unlink(uint64_t dir, const std::string& name) { return c->send(FUSE_UNLINK, dir, Args().str(name)).error(); }

  TempDir d;
  std::unique_ptr<FuseClient> c;
  size_t baseline = 0;
};

TEST_F(FdBudget, WalkStatAndReadThousandsOfFiles) {
  constexpr int kDirs = 20, kFiles = 150;
  for (int i = 0; i < kDirs; ++i) {
    stdfs::create_directories(d.path() / ("d" + std::to_string(i)) / "deep");
    for (int j = 0; j < kFiles; ++j)
      write_file(d.path() / ("d" + std::to_string(i)) / "deep" / ("f" + std::to_string(j)),
                 "file " + std::to_string(i) + "/" + std::to_string(j));
  }
  struct Seen {
    uint64_t node;
    ino_t ino;
    std::string content;
  };
  std::vector<Seen> seen;
  for (int i = 0; i < kDirs; ++i) {
    const auto dir = c->lookup(1, "d" + std::to_string(i));
    const auto deep = c->lookup(dir.nodeid, "deep");
    ASSERT_NE(deep.nodeid, 0u);
    for (int j = 0; j < kFiles; ++j) {
      const std::string name = "f" + std::to_string(j);
      const auto e = c->lookup(deep.nodeid, name);
      ASSERT_NE(e.nodeid, 0u) << i << "/" << j;
      const std::string want = "file " + std::to_string(i) + "/" + std::to_string(j);
      ASSERT_EQ(read_all(e.nodeid), want);
      seen.push_back({e.nodeid, static_cast<ino_t>(e.attr.ino), want});
      if (j % 50 == 0) expect_bounded();
    }
  }
  EXPECT_EQ(c->server.fs().inode_count(), 1u + 2 * kDirs + kDirs * kFiles);
  // Again, long after every one of them was evicted: stat and read.
  for (size_t k = 0; k < seen.size(); k += 7) {
    int err = 0;
    EXPECT_EQ(attr(seen[k].node, &err).ino, seen[k].ino) << err;
    EXPECT_EQ(read_all(seen[k].node), seen[k].content);
  }
  expect_bounded();
}

TEST_F(FdBudget, FilesRenamedThroughTheServerStayReachable) {
  constexpr int kFiles = 300;
  stdfs::create_directories(d.path() / "a");
  stdfs::create_directories(d.path() / "b");
  for (int j = 0; j < kFiles; ++j) write_file(d.path() / "a" / ("f" + std::to_string(j)), "content " + std::to_string(j));
  const uint64_t a = c->lookup(1, "a").nodeid, b = c->lookup(1, "b").nodeid;
  std::vector<uint64_t> nodes;
  for (int j = 0; j < kFiles; ++j) nodes.push_back(c->lookup(a, "f" + std::to_string(j)).nodeid);
  // Half move to b under new names, in the order that evicts each first.
  for (int j = 0; j < kFiles; j += 2) ASSERT_EQ(rename(a, "f" + std::to_string(j), b, "g" + std::to_string(j)), 0);
  // Then the directory a itself moves (its children keep their names in it).
  ASSERT_EQ(rename(1, "a", b, "a-moved"), 0);
  for (int j = 0; j < kFiles; ++j) {
    EXPECT_EQ(read_all(nodes[j]), "content " + std::to_string(j)) << j;
    if (j % 50 == 0) expect_bounded();
  }
  EXPECT_TRUE(stdfs::exists(d.path() / "b/a-moved/f1"));
  EXPECT_TRUE(stdfs::exists(d.path() / "b/g0"));
  // RENAME_EXCHANGE swaps the names the table records too.
  write_file(d.path() / "b/x", "x");
  write_file(d.path() / "b/y", "y");
  const uint64_t x = c->lookup(b, "x").nodeid, y = c->lookup(b, "y").nodeid;
  fuse_rename2_in ri{};
  ri.newdir = b;
  ri.flags = RENAME_EXCHANGE;
  ASSERT_EQ(c->send(FUSE_RENAME2, b, Args().add(ri).str("x").str("y")).error(), 0);
  for (int j = 0; j < 40; ++j) c->lookup(b, "g" + std::to_string(2 * j));  // evict x and y
  EXPECT_EQ(read_all(x), "x");
  EXPECT_EQ(read_all(y), "y");
  expect_bounded();
}

TEST_F(FdBudget, UnlinkedWhileHeldStillAnswers) {
  for (int j = 0; j < 40; ++j) write_file(d.path() / ("f" + std::to_string(j)), std::string(j + 1, 'x'));
  const auto victim = c->lookup(1, "f0");
  int err = 0;
  const uint64_t fh = c->open(victim.nodeid, O_RDONLY, &err);
  ASSERT_EQ(err, 0);
  for (int j = 1; j < 40; ++j) c->lookup(1, "f" + std::to_string(j));  // evicts f0's O_PATH fd
  ASSERT_EQ(unlink(1, "f0"), 0);
  for (int j = 1; j < 40; ++j) c->lookup(1, "f" + std::to_string(j));
  const fuse_attr a = attr(victim.nodeid, &err);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(a.nlink, 0u);
  EXPECT_EQ(a.size, 1u);
  EXPECT_EQ(attr(victim.nodeid, &err, fh).size, 1u);
  EXPECT_EQ(err, 0);
  // A hard link made through the server, then the first name unlinked: the
  // other name serves.
  const uint64_t f5 = c->lookup(1, "f5").nodeid;
  fuse_link_in li{};
  li.oldnodeid = f5;
  ASSERT_EQ(c->send(FUSE_LINK, 1, Args().add(li).str("alias")).error(), 0);
  ASSERT_EQ(unlink(1, "f5"), 0);
  for (int j = 6; j < 40; ++j) c->lookup(1, "f" + std::to_string(j));
  EXPECT_EQ(read_all(f5), std::string(6, 'x'));
  expect_bounded();
}

TEST_F(FdBudget, ChangedOnTheHostIsStaleAndTheServerGoesOn) {
  stdfs::create_directories(d.path() / "dir");
  for (int j = 0; j < 40; ++j) write_file(d.path() / "dir" / ("f" + std::to_string(j)), "v1");
  const uint64_t dir = c->lookup(1, "dir").nodeid;
  const uint64_t f0 = c->lookup(dir, "f0").nodeid;
  const uint64_t f1 = c->lookup(dir, "f1").nodeid;
  for (int j = 2; j < 40; ++j) c->lookup(dir, "f" + std::to_string(j));
  stdfs::rename(d.path() / "dir/f0", d.path() / "dir/renamed-on-host");
  // Replaced as editors do (a new file renamed over it). A file deleted and
  // re-created may get the same inode number back: that one cannot be told
  // apart and is served as the same inode.
  write_file(d.path() / "dir/f1.new", "replaced");
  stdfs::rename(d.path() / "dir/f1.new", d.path() / "dir/f1");
  int err = 0;
  attr(f0, &err);
  EXPECT_EQ(err, -ESTALE);
  attr(f1, &err);
  EXPECT_EQ(err, -ESTALE);
  // A fresh lookup finds them again.
  const auto again = c->lookup(dir, "renamed-on-host");
  EXPECT_EQ(again.nodeid, f0);
  EXPECT_EQ(read_all(f0), "v1");
  EXPECT_EQ(read_all(c->lookup(dir, "f1").nodeid), "replaced");
  // A directory swapped for a symlink to outside the share: ESTALE, not a way out.
  TempDir outside;
  write_file(outside.path() / "f2", "outside");
  const uint64_t f2 = c->lookup(dir, "f2").nodeid;
  for (int j = 3; j < 40; ++j) c->lookup(dir, "f" + std::to_string(j));
  stdfs::rename(d.path() / "dir", d.path() / "dir.old");
  stdfs::create_directory_symlink(outside.path(), d.path() / "dir");
  for (int j = 0; j < 40; ++j) write_file(d.path() / ("g" + std::to_string(j)), "g");
  for (int j = 0; j < 40; ++j) c->lookup(1, "g" + std::to_string(j));  // evicts dir as well
  EXPECT_NE(read_all(f2), "outside");
  attr(f2, &err);
  EXPECT_EQ(err, -ESTALE);
  expect_bounded();
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
