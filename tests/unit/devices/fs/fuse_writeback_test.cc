// FUSE_WRITEBACK_CACHE: offered only under --share-cache always, and only
// when the guest asks for it; with it, write-only opens become read-write on
// the host (the guest reads to fill partial pages), O_APPEND is left to the
// guest (it sends the offsets), and SEEK_DATA/SEEK_HOLE too.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>

#include "tests/unit/devices/fs/fuse_test_client.h"

namespace ksbox::devices::fs::testing {
namespace {

constexpr uint32_t kGuestFlags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_WRITEBACK_CACHE;

uint32_t negotiated(CachePolicy policy, uint32_t guest_flags = kGuestFlags) {
  TempDir d;
  FuseClient c(d.path(), PassthroughOptions{}.with_cache(policy));
  const Reply r = c.init(7, 38, guest_flags);
  EXPECT_EQ(r.error(), 0);
  EXPECT_EQ(c.server.fs().writeback(), (r.as<fuse_init_out>().flags & FUSE_WRITEBACK_CACHE) != 0);
  return r.as<fuse_init_out>().flags;
}

TEST(FuseWriteback, OnlyUnderAlwaysAndOnlyWhenTheGuestAsks) {
  EXPECT_FALSE(negotiated(CachePolicy::kAuto) & FUSE_WRITEBACK_CACHE);  // host edits stay visible
  EXPECT_FALSE(negotiated(CachePolicy::kNever) & FUSE_WRITEBACK_CACHE);
  EXPECT_TRUE(negotiated(CachePolicy::kAlways) & FUSE_WRITEBACK_CACHE);
  EXPECT_FALSE(negotiated(CachePolicy::kAlways, kGuestFlags & ~FUSE_WRITEBACK_CACHE) & FUSE_WRITEBACK_CACHE);
}

class FuseWritebackOpen : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    write_file(d.path() / "f", "0123456789");
    c = std::make_unique<FuseClient>(d.path(), PassthroughOptions{}.with_cache(CachePolicy::kAlways));
    ASSERT_EQ(c->init(7, 38, GetParam() ? kGuestFlags : kGuestFlags & ~FUSE_WRITEBACK_CACHE).error(), 0);
    node = c->lookup(1, "f").nodeid;
    ASSERT_NE(node, 0u);
  }
  TempDir d;
  std::unique_ptr<FuseClient> c;
  uint64_t node = 0;
};

TEST_P(FuseWritebackOpen, WriteOnlyFilesCanBeReadBackOnlyWithWriteback) {
  int err = 0;
  const uint64_t fh = c->open(node, O_WRONLY, &err);
  ASSERT_EQ(err, 0);
  const Reply r = c->read(node, fh, 0, 4);
  if (GetParam()) {
    EXPECT_EQ(r.error(), 0);
    EXPECT_EQ(std::string(r.body.begin(), r.body.end()), "0123");
  } else {
    EXPECT_EQ(r.error(), -EBADF);
  }
}

TEST_P(FuseWritebackOpen, AppendIsPlacedByTheGuestWithWriteback) {
  int err = 0;
  const uint64_t fh = c->open(node, O_WRONLY | O_APPEND, &err);
  ASSERT_EQ(err, 0);
  // The guest's writeback sends the offset it wants (here: over the start).
  EXPECT_EQ(c->write(node, fh, 0, "ab").error(), 0);
  EXPECT_EQ(read_file(d.path() / "f"), GetParam() ? "ab23456789" : "0123456789ab");
}

TEST_P(FuseWritebackOpen, CreateWriteOnlyIsReadableWithWriteback) {
  int err = 0;
  const auto [e, fh] = c->create(1, "new", O_WRONLY | O_CREAT, S_IFREG | 0644, &err);
  ASSERT_EQ(err, 0);
  EXPECT_EQ(c->write(e.nodeid, fh, 0, "hello").error(), 0);
  EXPECT_EQ(c->read(e.nodeid, fh, 0, 5).error(), GetParam() ? 0 : -EBADF);
}

TEST_P(FuseWritebackOpen, HolesAreLeftToTheGuestWithWriteback) {
  int err = 0;
  const uint64_t fh = c->open(node, O_RDONLY, &err);
  ASSERT_EQ(err, 0);
  fuse_lseek_in li{};
  li.fh = fh;
  li.whence = SEEK_HOLE;
  // The host cannot see the guest's unwritten pages: ENOSYS, the guest answers.
  EXPECT_EQ(c->send(FUSE_LSEEK, node, Args().add(li)).error(), GetParam() ? -ENOSYS : 0);
}

INSTANTIATE_TEST_SUITE_P(WithAndWithout, FuseWritebackOpen, ::testing::Bool());

}  // namespace
}  // namespace ksbox::devices::fs::testing
