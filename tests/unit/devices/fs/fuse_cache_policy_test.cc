// The share's cache policy as the guest receives it: entry/attribute
// timeouts and the FOPEN_* flags of open, create and opendir replies.
#include <fcntl.h>
#include <gtest/gtest.h>

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
  oi.flags = O_RDONLY;
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
  EXPECT_EQ(s.open_flags, 0u);  // no KEEP_CACHE: pages are dropped at each open
  EXPECT_EQ(s.create_flags, 0u);
  EXPECT_EQ(s.opendir_flags, 0u);
}

TEST(FuseCachePolicy, NeverAsksTheHostEveryTime) {
  const Seen s = seen_with(CachePolicy::kNever);
  EXPECT_EQ(s.entry_valid, 0u);
  EXPECT_EQ(s.attr_valid, 0u);
  EXPECT_EQ(s.open_flags, uint32_t{FOPEN_DIRECT_IO});
  EXPECT_EQ(s.create_flags, uint32_t{FOPEN_DIRECT_IO});
  EXPECT_EQ(s.opendir_flags, 0u);
}

TEST(FuseCachePolicy, AlwaysKeepsPagesAndDirectories) {
  const Seen s = seen_with(CachePolicy::kAlways);
  EXPECT_EQ(s.entry_valid, 86400u);
  EXPECT_EQ(s.attr_valid, 86400u);
  EXPECT_EQ(s.open_flags, uint32_t{FOPEN_KEEP_CACHE});
  EXPECT_EQ(s.create_flags, uint32_t{FOPEN_KEEP_CACHE});
  EXPECT_EQ(s.opendir_flags, uint32_t{FOPEN_CACHE_DIR});
}

TEST(FuseCachePolicy, Parse) {
  EXPECT_EQ(parse_cache_policy("never"), CachePolicy::kNever);
  EXPECT_EQ(parse_cache_policy("auto"), CachePolicy::kAuto);
  EXPECT_EQ(parse_cache_policy("always"), CachePolicy::kAlways);
  EXPECT_KSBOX_ERROR(parse_cache_policy("sometimes"), "valid values are never, auto, always");
}

}  // namespace
}  // namespace ksbox::devices::fs::testing
