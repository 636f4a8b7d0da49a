// LOOKUP and READDIRPLUS of names that stand for nodes the server already
// holds: answered with that node after one fstatat, without opening a new
// fd (HeldNamesNeedNoNewDescriptor); every answer adds a lookup reference,
// so the guest's FORGETs balance; and what the host did to a name since it
// was last seen is what the guest gets (the new file's node and attributes,
// never the old node with them).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <utility>
#include <map>
#include <string>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs {
namespace {

using testing::Args;
using testing::FuseClient;
using testing::list_dir;
using testing::TempDir;
using testing::write_file;

void forget(FuseClient& c, uint64_t node, uint64_t n) {
  fuse_forget_in fi{};
  fi.nlookup = n;
  c.send(FUSE_FORGET, node, Args().add(fi));
}

// One READDIRPLUS pass over the root: name → entry, without "." and "..".
std::map<std::string, fuse_entry_out> listing(FuseClient& c) {
  int calls = 0;
  auto names = list_dir(c, 1, true, 4096, &calls);
  names.erase(".");
  names.erase("..");
  return names;
}

void write_files(const TempDir& d, std::initializer_list<std::pair<const char*, const char*>> files) {
  for (const auto& [name, data] : files) write_file(d.path() / name, data);
}

ino_t host_ino(const std::filesystem::path& p) {
  struct stat st{};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_ino;
}

TEST(FuseKnownNode, ReaddirplusAgainReusesEachNodeAndCountsItsLookups) {
  TempDir d;
  for (int i = 0; i < 30; ++i) write_file(d.path() / ("f" + std::to_string(i)), std::string(i, 'x'));
  std::filesystem::create_directory(d.path() / "sub");
  FuseClient c(d.path());
  ASSERT_EQ(c.init().error(), 0);
  const size_t base = c.server.fs().inode_count();
  const auto first = listing(c);
  ASSERT_EQ(first.size(), 31u);
  const auto second = listing(c);
  ASSERT_EQ(second.size(), 31u);
  for (const auto& [name, e] : first) {
    EXPECT_EQ(second.at(name).nodeid, e.nodeid) << name;
    EXPECT_EQ(second.at(name).attr.ino, e.attr.ino) << name;
    EXPECT_EQ(second.at(name).attr.size, e.attr.size) << name;
    EXPECT_EQ(second.at(name).attr.mode, e.attr.mode) << name;
  }
  // Two passes, two references each: the first FORGET leaves every node.
  for (const auto& [name, e] : first) forget(c, e.nodeid, 1);
  for (const auto& [name, e] : first) EXPECT_TRUE(c.server.fs().known(e.nodeid)) << name;
  for (const auto& [name, e] : first) forget(c, e.nodeid, 1);
  for (const auto& [name, e] : first) EXPECT_FALSE(c.server.fs().known(e.nodeid)) << name;
  EXPECT_EQ(c.server.fs().inode_count(), base);
  EXPECT_EQ(c.count(Malformed::kForgetExcess), 0u);
}

TEST(FuseKnownNode, ReaddirplusOfANameReplacedOnTheHostGivesTheNewFile) {
  TempDir d;
  write_files(d, {{"a", "old"}, {"b", "the b file"}, {"c", "c"}});
  FuseClient c(d.path());
  ASSERT_EQ(c.init().error(), 0);
  const size_t base = c.server.fs().inode_count();
  const auto first = listing(c);
  // Behind the server: `a` becomes a new file, `b` is renamed over `c` (a
  // name now standing for another node the server holds).
  write_file(d.path() / "a.tmp", "replacement");
  std::filesystem::rename(d.path() / "a.tmp", d.path() / "a");
  std::filesystem::rename(d.path() / "b", d.path() / "c");
  const auto second = listing(c);
  ASSERT_EQ(second.size(), 2u);
  const fuse_entry_out a = second.at("a");
  EXPECT_NE(a.nodeid, first.at("a").nodeid);
  EXPECT_EQ(a.attr.ino, host_ino(d.path() / "a"));
  EXPECT_EQ(a.attr.size, 11u);
  const fuse_entry_out cc = second.at("c");
  EXPECT_EQ(cc.nodeid, first.at("b").nodeid);  // b's node, with b's attributes
  EXPECT_EQ(cc.attr.ino, first.at("b").attr.ino);
  EXPECT_EQ(cc.attr.size, 10u);
  // The new `a` reads as the new file.
  const uint64_t fh = c.open(a.nodeid, O_RDONLY);
  ASSERT_NE(fh, 0u);
  const auto r = c.read(a.nodeid, fh, 0, 100);
  EXPECT_EQ(std::string(r.body.begin(), r.body.end()), "replacement");
  fuse_release_in rel{};
  rel.fh = fh;
  c.send(FUSE_RELEASE, a.nodeid, Args().add(rel));
  // Every reference handed out is forgotten once: nothing is left.
  forget(c, first.at("a").nodeid, 1);
  forget(c, first.at("b").nodeid, 2);
  forget(c, first.at("c").nodeid, 1);
  forget(c, a.nodeid, 1);
  EXPECT_EQ(c.server.fs().inode_count(), base);
  EXPECT_EQ(c.count(Malformed::kForgetExcess), 0u);
}

TEST(FuseKnownNode, EvictedNodesAreReusedWithoutOpeningAndStillWork) {
  TempDir d;
  for (int i = 0; i < 12; ++i) write_file(d.path() / ("f" + std::to_string(i)), std::string(i + 1, 'y'));
  PassthroughOptions o;
  o.max_fds = 3;
  FuseClient c(d.path(), o);
  ASSERT_EQ(c.init().error(), 0);
  const auto first = listing(c);
  const auto second = listing(c);
  EXPECT_LE(c.server.fs().open_inode_fds(), 3u);
  for (const auto& [name, e] : first) {
    ASSERT_EQ(second.at(name).nodeid, e.nodeid) << name;
    const auto r = c.send(FUSE_GETATTR, e.nodeid, Args().add(fuse_getattr_in{}));  // re-opened by name
    ASSERT_EQ(r.error(), 0) << name;
    EXPECT_EQ(r.as<fuse_attr_out>().attr.size, e.attr.size) << name;
  }
  EXPECT_LE(c.server.fs().open_inode_fds(), 3u);
}

TEST(FuseKnownNode, LookupOfAHeldNameReusesItsNode) {
  TempDir d;
  write_file(d.path() / "a", "1");
  write_file(d.path() / "b", "22");
  ::link((d.path() / "b").c_str(), (d.path() / "b2").c_str());
  FuseClient c(d.path());
  ASSERT_EQ(c.init().error(), 0);
  const size_t base = c.server.fs().inode_count();
  const auto a = c.lookup(1, "a");
  const auto b = c.lookup(1, "b");
  ASSERT_NE(a.nodeid, 0u);
  EXPECT_EQ(c.lookup(1, "a").nodeid, a.nodeid);
  EXPECT_EQ(c.lookup(1, "b2").nodeid, b.nodeid);  // another name of a held inode
  EXPECT_EQ(c.lookup(1, "b2").attr.size, 2u);
  forget(c, a.nodeid, 1);
  EXPECT_TRUE(c.server.fs().known(a.nodeid));  // looked up twice
  forget(c, a.nodeid, 1);
  forget(c, b.nodeid, 3);
  EXPECT_EQ(c.server.fs().inode_count(), base);
  EXPECT_EQ(c.count(Malformed::kForgetExcess), 0u);
}

// Takes every descriptor number left under RLIMIT_NOFILE, so that nothing
// more can be opened (in a death-test child: the process ends after).
bool exhaust_fds() {
  struct rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  int top = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (top < 0) return false;
  rl.rlim_cur = static_cast<rlim_t>(top) + 1;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  while (::dup(top) >= 0) {}
  return errno == EMFILE;
}

// With no descriptor left, held names are still answered, by LOOKUP and by
// READDIRPLUS, while a name the server does not hold is refused: the reuse
// opens nothing.
void held_names_without_descriptors(const std::filesystem::path& root) {
  write_file(root / "a", "1");
  write_file(root / "b", "22");
  FuseClient c(root);
  if (c.init().error() != 0) std::_Exit(2);
  const auto first = listing(c);
  fuse_open_in oi{};
  const uint64_t dirfh = c.send(FUSE_OPENDIR, 1, Args().add(oi)).as<fuse_open_out>().fh;
  write_file(root / "new", "333");
  if (!exhaust_fds()) std::_Exit(3);
  int err = 0;
  if (c.lookup(1, "a", &err).nodeid != first.at("a").nodeid) std::_Exit(4);
  c.lookup(1, "new", &err);
  if (err != -ENFILE) std::_Exit(5);
  fuse_read_in ri{};
  ri.fh = dirfh;
  ri.size = 4096;
  const auto r = c.send(FUSE_READDIRPLUS, 1, Args().add(ri));
  if (r.error() != 0) std::_Exit(6);
  size_t held = 0;
  for (size_t pos = 0; pos < r.body.size();) {
    fuse_direntplus dp{};
    std::memcpy(&dp, r.body.data() + pos, FUSE_NAME_OFFSET_DIRENTPLUS);
    const std::string name(reinterpret_cast<const char*>(r.body.data() + pos + FUSE_NAME_OFFSET_DIRENTPLUS),
                           dp.dirent.namelen);
    if (first.contains(name) && dp.entry_out.nodeid == first.at(name).nodeid) ++held;
    if (name == "new") std::_Exit(7);  // could only be answered by opening it
    pos += FUSE_DIRENTPLUS_SIZE(&dp);
  }
  std::_Exit(held == 2 ? 0 : 8);
}

TEST(FuseKnownNodeDeathTest, HeldNamesNeedNoNewDescriptor) {
  TempDir d;
  EXPECT_EXIT(held_names_without_descriptors(d.path()), ::testing::ExitedWithCode(0), "");
}

TEST(FuseKnownNode, LookupOfAHeldNameSeesWhatTheHostDidToIt) {
  TempDir d;
  write_files(d, {{"a", "1"}, {"b", "2"}, {"c", "3"}});
  FuseClient c(d.path());
  ASSERT_EQ(c.init().error(), 0);
  const auto a = c.lookup(1, "a");
  const auto b = c.lookup(1, "b");
  c.lookup(1, "c");
  // `a` becomes a symlink out of the share: the node is the link itself.
  std::filesystem::remove(d.path() / "a");
  std::filesystem::create_symlink("/etc/passwd", d.path() / "a");
  const auto link = c.lookup(1, "a");
  ASSERT_NE(link.nodeid, 0u);
  EXPECT_NE(link.nodeid, a.nodeid);
  EXPECT_TRUE(S_ISLNK(link.attr.mode));
  EXPECT_EQ(link.attr.ino, host_ino(d.path() / "a"));
  // `b` is gone; `c` is now a directory.
  std::filesystem::remove(d.path() / "b");
  int err = -1;
  EXPECT_EQ(c.lookup(1, "b", &err).nodeid, 0u);  // absent (auto: a negative entry)
  EXPECT_EQ(err, 0);
  std::filesystem::remove(d.path() / "c");
  std::filesystem::create_directory(d.path() / "c");
  const auto dir = c.lookup(1, "c");
  EXPECT_TRUE(S_ISDIR(dir.attr.mode));
  EXPECT_EQ(dir.attr.ino, host_ino(d.path() / "c"));
  EXPECT_TRUE(c.server.fs().known(b.nodeid));  // still held by the guest
}

}  // namespace
}  // namespace ksbox::devices::fs
