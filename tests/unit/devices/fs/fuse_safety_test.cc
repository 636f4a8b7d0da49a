// The server against a hostile driver: escapes, special files, setuid,
// read-only shares, malformed requests.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs {
namespace {

using testing::Args;
using testing::FuseClient;
using testing::Reply;
using testing::TempDir;

class PassthroughSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directory(outer.path() / "share");
    std::ofstream(outer.path() / "secret") << "host secret";
    root = outer.path() / "share";
    c = std::make_unique<FuseClient>(root);
    ASSERT_EQ(c->init().error(), 0);
  }
  TempDir outer;  // the share is outer/share; outer/secret must stay out of reach
  std::filesystem::path root;
  std::unique_ptr<FuseClient> c;
};

TEST_F(PassthroughSafety, NamesAreSingleComponents) {
  std::filesystem::create_directory(root / "d");
  std::ofstream(root / "d" / "f") << "x";
  for (const char* bad : {"d/f", "..", ".", "", "/etc", "../secret"}) {
    int err = 0;
    c->lookup(1, bad, &err);
    EXPECT_EQ(err, -EINVAL) << bad;
  }
  EXPECT_EQ(c->count(Malformed::kBadName), 6u);
  // A NUL inside the name: the name ends early and the rest is trailing junk.
  EXPECT_EQ(c->send(FUSE_LOOKUP, 1, Args().raw(std::string("d\0/f\0", 5))).error(), -EINVAL);
  // Unterminated name.
  EXPECT_EQ(c->send(FUSE_LOOKUP, 1, Args().raw("d")).error(), -EINVAL);
  // Too long.
  EXPECT_EQ(c->send(FUSE_LOOKUP, 1, Args().str(std::string(300, 'a'))).error(), -EINVAL);
  EXPECT_EQ(c->send(FUSE_MKDIR, 1, Args().add(fuse_mkdir_in{0755, 0}).str("../evil")).error(), -EINVAL);
  EXPECT_FALSE(std::filesystem::exists(outer.path() / "evil"));
  EXPECT_NE(c->lookup(1, "d").nodeid, 0u);  // still serving
}

TEST_F(PassthroughSafety, SymlinkOutsideIsNeverFollowed) {
  std::filesystem::create_symlink(outer.path() / "secret", root / "abs");
  std::filesystem::create_symlink("../secret", root / "rel");
  std::filesystem::create_directory_symlink(outer.path(), root / "dirlink");
  for (const char* name : {"abs", "rel"}) {
    const auto e = c->lookup(1, name);
    ASSERT_NE(e.nodeid, 0u) << name;
    EXPECT_TRUE(S_ISLNK(e.attr.mode)) << name;  // the link itself
    int err = 0;
    c->open(e.nodeid, O_RDONLY, &err);
    EXPECT_EQ(err, -ELOOP) << name;
    fuse_setattr_in si{};
    si.valid = FATTR_SIZE;
    EXPECT_NE(c->send(FUSE_SETATTR, e.nodeid, Args().add(si)).error(), 0);
  }
  // Through a directory symlink: the link is not a directory to look in.
  const auto dl = c->lookup(1, "dirlink");
  int err = 0;
  c->lookup(dl.nodeid, "secret", &err);
  EXPECT_NE(err, 0);
  fuse_open_in oi{};
  EXPECT_EQ(c->send(FUSE_OPENDIR, dl.nodeid, Args().add(oi)).error(), -ENOTDIR);
  // Creating through a symlinked name does not write outside.
  fuse_create_in ci{};
  ci.flags = O_WRONLY | O_CREAT | O_TRUNC;
  ci.mode = 0644;
  EXPECT_NE(c->send(FUSE_CREATE, 1, Args().add(ci).str("abs")).error(), 0);
  std::ifstream f(outer.path() / "secret");
  std::string s;
  std::getline(f, s);
  EXPECT_EQ(s, "host secret");
}

TEST_F(PassthroughSafety, LinkOfASymlinkLinksTheSymlinkNotItsTarget) {
  std::filesystem::create_symlink(outer.path() / "secret", root / "abs");
  const auto l = c->lookup(1, "abs");
  fuse_link_in li{};
  li.oldnodeid = l.nodeid;
  const Reply r = c->send(FUSE_LINK, 1, Args().add(li).str("hard"));
  ASSERT_EQ(r.error(), 0);
  EXPECT_TRUE(S_ISLNK(r.as<fuse_entry_out>().attr.mode));
  EXPECT_TRUE(std::filesystem::is_symlink(root / "hard"));
  struct stat st{};
  ASSERT_EQ(::stat((outer.path() / "secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(PassthroughSafety, SpecialFilesAreNeverOpened) {
  ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0644), 0);
  const auto e = c->lookup(1, "fifo");
  ASSERT_NE(e.nodeid, 0u);
  EXPECT_TRUE(S_ISFIFO(e.attr.mode));
  int err = 0;
  // O_NONBLOCK so that a regression fails here instead of hanging.
  c->open(e.nodeid, O_RDONLY | O_NONBLOCK, &err);
  EXPECT_EQ(err, -EACCES);
  c->open(e.nodeid, O_WRONLY | O_NONBLOCK, &err);
  EXPECT_EQ(err, -EACCES);
  fuse_create_in ci{};
  ci.flags = O_RDONLY | O_CREAT;
  ci.mode = 0644;
  EXPECT_EQ(c->send(FUSE_CREATE, 1, Args().add(ci).str("fifo")).error(), -EACCES);
  fuse_setattr_in si{};
  si.valid = FATTR_SIZE;
  EXPECT_EQ(c->send(FUSE_SETATTR, e.nodeid, Args().add(si)).error(), -EINVAL);
  fuse_open_in oi{};
  EXPECT_EQ(c->send(FUSE_OPENDIR, e.nodeid, Args().add(oi)).error(), -ENOTDIR);
}

TEST_F(PassthroughSafety, SetuidAndSetgidAreStripped) {
  fuse_create_in ci{};
  ci.flags = O_WRONLY | O_CREAT;
  ci.mode = S_IFREG | 06755;
  const Reply r = c->send(FUSE_CREATE, 1, Args().add(ci).str("suid"));
  ASSERT_EQ(r.error(), 0);
  struct stat st{};
  ASSERT_EQ(::stat((root / "suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u);
  const uint64_t node = r.as<fuse_entry_out>().nodeid;
  fuse_setattr_in si{};
  si.valid = FATTR_MODE;
  si.mode = S_IFREG | 04755;
  const Reply s = c->send(FUSE_SETATTR, node, Args().add(si));
  ASSERT_EQ(s.error(), 0);
  ASSERT_EQ(::stat((root / "suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  fuse_mkdir_in mi{};
  mi.mode = 03777;
  ASSERT_EQ(c->send(FUSE_MKDIR, 1, Args().add(mi).str("d")).error(), 0);
  ASSERT_EQ(::stat((root / "d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & S_ISGID, 0u);
}

TEST(PassthroughReadOnly, EveryMutationIsErofs) {
  TempDir d;
  std::ofstream(d.path() / "f") << "data";
  std::filesystem::create_directory(d.path() / "sub");
  PassthroughOptions ro;
  ro.read_only = true;
  FuseClient c(d.path(), ro);
  ASSERT_EQ(c.init().error(), 0);
  const auto f = c.lookup(1, "f");
  int err = 0;
  EXPECT_EQ(c.open(f.nodeid, O_WRONLY, &err), 0u);
  EXPECT_EQ(err, -EROFS);
  c.open(f.nodeid, O_RDONLY | O_TRUNC, &err);
  EXPECT_EQ(err, -EROFS);
  const uint64_t fh = c.open(f.nodeid, O_RDONLY);
  ASSERT_NE(fh, 0u);
  EXPECT_EQ(c.read(f.nodeid, fh, 0, 4).body.size(), 4u);
  EXPECT_EQ(c.write(f.nodeid, fh, 0, "x").error(), -EROFS);
  fuse_create_in ci{};
  ci.flags = O_WRONLY | O_CREAT;
  EXPECT_EQ(c.send(FUSE_CREATE, 1, Args().add(ci).str("n")).error(), -EROFS);
  EXPECT_EQ(c.send(FUSE_MKDIR, 1, Args().add(fuse_mkdir_in{}).str("n")).error(), -EROFS);
  EXPECT_EQ(c.send(FUSE_UNLINK, 1, Args().str("f")).error(), -EROFS);
  EXPECT_EQ(c.send(FUSE_RMDIR, 1, Args().str("sub")).error(), -EROFS);
  EXPECT_EQ(c.send(FUSE_RENAME, 1, Args().add(fuse_rename_in{1}).str("f").str("g")).error(), -EROFS);
  EXPECT_EQ(c.send(FUSE_SYMLINK, 1, Args().str("l").str("f")).error(), -EROFS);
  fuse_link_in li{};
  li.oldnodeid = f.nodeid;
  EXPECT_EQ(c.send(FUSE_LINK, 1, Args().add(li).str("h")).error(), -EROFS);
  fuse_setattr_in si{};
  si.valid = FATTR_MODE;
  si.mode = 0777;
  EXPECT_EQ(c.send(FUSE_SETATTR, f.nodeid, Args().add(si)).error(), -EROFS);
  EXPECT_EQ(std::filesystem::directory_iterator(d.path()) != std::filesystem::directory_iterator(), true);
  EXPECT_TRUE(std::filesystem::exists(d.path() / "f"));
  EXPECT_FALSE(std::filesystem::exists(d.path() / "n"));
}

TEST_F(PassthroughSafety, MalformedRequestsAreRefusedAndCounted) {
  FuseClient& k = *c;
  // Shorter than a header: no reply possible.
  std::vector<uint8_t> tiny(10, 0);
  const std::span<const uint8_t> in1(tiny);
  std::vector<uint8_t> out(256);
  const std::span<uint8_t> o1(out);
  EXPECT_EQ(k.server.handle({&in1, 1}, {&o1, 1}), 0u);
  EXPECT_EQ(k.count(Malformed::kShortHeader), 1u);
  // len says more (or less) than arrived.
  EXPECT_EQ(k.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{}), 256, 4096).written, 0u);
  EXPECT_EQ(k.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{}), 256, 41).written, 0u);
  EXPECT_EQ(k.count(Malformed::kLengthMismatch), 2u);
  // No room for a reply header.
  EXPECT_EQ(k.send(FUSE_STATFS, 1, {}, 8).written, 0u);
  EXPECT_EQ(k.count(Malformed::kNoReplySpace), 1u);
  // Truncated and oversized arguments.
  EXPECT_EQ(k.send(FUSE_GETATTR, 1, Args().raw("abc")).error(), -EINVAL);
  EXPECT_EQ(k.send(FUSE_OPEN, 1, Args().raw("abc")).error(), -EINVAL);
  EXPECT_EQ(k.send(FUSE_STATFS, 1, Args().raw("junk")).error(), -EINVAL);
  EXPECT_EQ(k.count(Malformed::kTruncatedArgs), 2u);
  EXPECT_EQ(k.count(Malformed::kTrailingBytes), 1u);
  // WRITE whose size is not the payload that arrived.
  std::ofstream(root / "f") << "x";
  const auto f = k.lookup(1, "f");
  const uint64_t fh = k.open(f.nodeid, O_RDWR);
  fuse_write_in wi{};
  wi.fh = fh;
  wi.size = 100000;
  EXPECT_EQ(k.send(FUSE_WRITE, f.nodeid, Args().add(wi).raw("short")).error(), -EINVAL);
  wi.size = 0xffffffff;
  EXPECT_EQ(k.send(FUSE_WRITE, f.nodeid, Args().add(wi).raw("short")).error(), -EINVAL);
  // READ asking for more than the reply space.
  fuse_read_in ri{};
  ri.fh = fh;
  ri.size = 4096;
  EXPECT_EQ(k.send(FUSE_READ, f.nodeid, Args().add(ri), 64).error(), -EINVAL);
  EXPECT_EQ(k.count(Malformed::kReplyTooLarge), 1u);
  // A reply larger than the space: -ERANGE.
  EXPECT_EQ(k.send(FUSE_GETATTR, 1, Args().add(fuse_getattr_in{}), 40).error(), -ERANGE);
  // Unknown nodeids and handles.
  EXPECT_EQ(k.send(FUSE_GETATTR, 4242, Args().add(fuse_getattr_in{})).error(), -ESTALE);
  EXPECT_EQ(k.count(Malformed::kUnknownNode), 1u);
  EXPECT_EQ(k.read(f.nodeid, 777, 0, 10).error(), -EBADF);
  // BATCH_FORGET with a count beyond its payload.
  fuse_batch_forget_in bf{};
  bf.count = 0xffffffff;
  EXPECT_EQ(k.send(FUSE_BATCH_FORGET, 0, Args().add(bf).add(fuse_forget_one{f.nodeid, 1})).written, 0u);
  EXPECT_EQ(k.count(Malformed::kBadCount), 2u);  // with the huge write size above
  EXPECT_TRUE(k.server.fs().known(f.nodeid));
  // Request extensions were never negotiated.
  fuse_in_header h{};
  h.len = sizeof h;
  h.opcode = FUSE_STATFS;
  h.nodeid = 1;
  h.total_extlen = 1;
  const std::span<const uint8_t> in2(reinterpret_cast<const uint8_t*>(&h), sizeof h);
  EXPECT_EQ(k.server.handle({&in2, 1}, {&o1, 1}), sizeof(fuse_out_header));
  EXPECT_EQ(k.count(Malformed::kExtensions), 1u);
  // And the server keeps working.
  EXPECT_EQ(k.send(FUSE_GETATTR, f.nodeid, Args().add(fuse_getattr_in{})).error(), 0);
  EXPECT_EQ(k.write(f.nodeid, fh, 0, "ok").error(), 0);
}

TEST_F(PassthroughSafety, HandlesAreBounded) {
  TempDir d;
  std::ofstream(d.path() / "f") << "x";
  PassthroughOptions o;
  o.max_handles = 3;
  FuseClient k(d.path(), o);
  ASSERT_EQ(k.init().error(), 0);
  const auto f = k.lookup(1, "f");
  for (int i = 0; i < 3; ++i) EXPECT_NE(k.open(f.nodeid, O_RDONLY), 0u);
  int err = 0;
  k.open(f.nodeid, O_RDONLY, &err);
  EXPECT_EQ(err, -ENFILE);
}

}  // namespace
}  // namespace ksbox::devices::fs
