// The inode table's bounded O_PATH fd cache: evicted inodes are re-opened
// by (parent, name) from the nearest open ancestor and checked against their
// (dev, ino); anything else is ESTALE, and nothing outside the root is ever
// reached.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "devices/fs/inode_table.h"
#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs::testing {
namespace {

namespace stdfs = std::filesystem;

UniqueFd opath(const stdfs::path& p) { return UniqueFd(::open(p.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC)); }

struct stat stat_of(const stdfs::path& p) {
  struct stat st{};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

// Makes each entry under `root`: a directory when it ends in '/', else a
// file holding its own name.
void make(const stdfs::path& root, std::initializer_list<std::string> entries) {
  for (const auto& e : entries) {
    if (e.ends_with('/')) stdfs::create_directories(root / e);
    else write_file(root / e, e);
  }
}

class LruTable {
 public:
  LruTable(const stdfs::path& root, size_t max_fds)
      : root_(root), t(opath(root), stat_of(root).st_dev, stat_of(root).st_ino, 1000, max_fds) {}
  // Looks up `rel` component by component, as the guest would.
  uint64_t lookup(const std::string& rel) {
    uint64_t parent = InodeTable::kRootId;
    stdfs::path p = root_;
    for (const auto& part : stdfs::path(rel)) {
      p /= part;
      const struct stat st = stat_of(p);
      parent = t.ref(opath(p), st.st_dev, st.st_ino, parent, part.string());
    }
    return parent;
  }
  ino_t ino_via_fd(uint64_t id, int* err = nullptr) {
    PathFd fd;
    const int r = t.fd(id, fd);
    if (err) *err = r;
    if (r) return 0;
    struct stat st{};
    EXPECT_EQ(::fstat(fd->get(), &st), 0);
    return st.st_ino;
  }

  stdfs::path root_;
  InodeTable t;
};

TEST(InodeTableLru, FdsStayWithinTheBudgetAndEvictedInodesReopen) {
  TempDir d;
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    stdfs::create_directories(d.path() / ("d" + std::to_string(i)) / "sub");
    for (int j = 0; j < 10; ++j) {
      names.push_back("d" + std::to_string(i) + "/sub/f" + std::to_string(j));
      write_file(d.path() / names.back(), names.back());
    }
  }
  LruTable lt(d.path(), 4);
  std::vector<uint64_t> ids;
  for (const auto& n : names) {
    ids.push_back(lt.lookup(n));
    EXPECT_LE(lt.t.open_fds(), 4u);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    int err = 0;
    EXPECT_EQ(lt.ino_via_fd(ids[i], &err), stat_of(d.path() / names[i]).st_ino) << names[i] << " " << err;
    EXPECT_LE(lt.t.open_fds(), 4u);
  }
}

TEST(InodeTableLru, ChangedOnTheHostIsStale) {
  TempDir d;
  make(d.path(), {"dir/", "dir/a", "dir/b", "dir/c"});
  LruTable lt(d.path(), 1);
  const uint64_t a = lt.lookup("dir/a");
  const uint64_t b = lt.lookup("dir/b");
  const uint64_t c = lt.lookup("dir/c");
  ASSERT_EQ(lt.t.open_fds(), 1u);
  // Replaced: the name now holds another inode.
  stdfs::rename(d.path() / "dir/b", d.path() / "dir/a");
  int err = 0;
  lt.ino_via_fd(a, &err);
  EXPECT_EQ(err, -ESTALE);
  // Renamed away: the name is gone.
  stdfs::rename(d.path() / "dir/c", d.path() / "dir/c2");
  lt.ino_via_fd(c, &err);
  EXPECT_EQ(err, -ESTALE);
  // b was renamed on the host too, onto a: stale until the guest looks it up again.
  lt.ino_via_fd(b, &err);
  EXPECT_EQ(err, -ESTALE);
  EXPECT_EQ(lt.lookup("dir/a"), b);
  EXPECT_EQ(lt.ino_via_fd(b, &err), stat_of(d.path() / "dir/a").st_ino);
}

TEST(InodeTableLru, ADirectorySwappedForASymlinkLeadsNowhere) {
  TempDir d, outside;
  make(d.path(), {"dir/", "dir/secret", "x"});
  write_file(outside.path() / "secret", "outside");
  LruTable lt(d.path(), 1);
  const uint64_t dir = lt.lookup("dir");
  const uint64_t file = lt.lookup("dir/secret");
  lt.lookup("x");  // evicts dir/secret
  stdfs::rename(d.path() / "dir", d.path() / "dir.old");
  stdfs::create_directory_symlink(outside.path(), d.path() / "dir");
  int err = 0;
  lt.ino_via_fd(file, &err);
  EXPECT_EQ(err, -ESTALE);
  lt.ino_via_fd(dir, &err);
  EXPECT_EQ(err, -ESTALE);
}

TEST(InodeTableLru, ParentsStayWhileNamedChildrenNeedThem) {
  TempDir d;
  make(d.path(), {"a/b/", "a/b/f"});
  LruTable lt(d.path(), 1);
  const uint64_t f = lt.lookup("a/b/f");  // one reference each to a, b and f
  const uint64_t a = lt.lookup("a");      // a second one to a
  const uint64_t b = lt.t.get(f)->parent;
  // The guest forgets both directories: f still re-opens through them.
  EXPECT_EQ(lt.t.forget(a, 2), 0u);
  EXPECT_EQ(lt.t.forget(b, 1), 0u);
  EXPECT_TRUE(lt.t.known(a));
  EXPECT_TRUE(lt.t.known(b));
  int err = 0;
  EXPECT_EQ(lt.ino_via_fd(f, &err), stat_of(d.path() / "a/b/f").st_ino) << err;
  // Forgetting f lets the whole chain go.
  EXPECT_EQ(lt.t.forget(f, 1), 0u);
  EXPECT_FALSE(lt.t.known(f));
  EXPECT_FALSE(lt.t.known(b));
  EXPECT_FALSE(lt.t.known(a));
  EXPECT_EQ(lt.t.size(), 1u);
  EXPECT_EQ(lt.t.open_fds(), 0u);
}

TEST(InodeTableLru, UnnamedInodesKeepTheirFdAndRenamesFollow) {
  TempDir d;
  make(d.path(), {"x/", "gone", "moved"});
  LruTable lt(d.path(), 2);
  const uint64_t gone = lt.lookup("gone");
  const uint64_t moved = lt.lookup("moved");
  const uint64_t x = lt.lookup("x");
  // Unlinked after an fd was opened for it: kept, and evicted only last.
  const ino_t gone_ino = stat_of(d.path() / "gone").st_ino;
  UniqueFd keep = opath(d.path() / "gone");
  stdfs::remove(d.path() / "gone");
  lt.t.unnamed(gone, InodeTable::kRootId, "gone", std::move(keep));
  // A rename through the server: the new name is used from now on.
  stdfs::rename(d.path() / "moved", d.path() / "x/moved2");
  lt.t.renamed(moved, x, "moved2");
  int err = 0;
  EXPECT_EQ(lt.ino_via_fd(moved, &err), stat_of(d.path() / "x/moved2").st_ino) << err;
  EXPECT_EQ(lt.ino_via_fd(x, &err), stat_of(d.path() / "x").st_ino) << err;
  EXPECT_EQ(lt.ino_via_fd(gone, &err), gone_ino) << err;
}

TEST(InodeTableLru, NamesThatWouldLoopAreRefused) {
  TempDir d;
  stdfs::create_directories(d.path() / "a/b");
  LruTable lt(d.path(), 8);
  const uint64_t a = lt.lookup("a");
  const uint64_t b = lt.lookup("a/b");
  lt.t.renamed(a, b, "a");  // a under its own child: refused, a keeps its name
  EXPECT_EQ(lt.t.get(a)->parent, InodeTable::kRootId);
  EXPECT_EQ(lt.t.get(a)->name, "a");
  lt.t.renamed(b, b, "self");
  EXPECT_EQ(lt.t.get(b)->parent, a);
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
