#include "devices/fs/inode_table.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <vector>

namespace ksbox::devices::fs {
namespace {

UniqueFd path_fd() { return UniqueFd(::open("/", O_PATH | O_CLOEXEC)); }

TEST(InodeTable, RefDeduplicatesByDevIno) {
  InodeTable t(path_fd(), 1, 2, 10, 10);
  const uint64_t a = t.ref(path_fd(), 1, 5);
  const uint64_t b = t.ref(path_fd(), 1, 5);
  const uint64_t c = t.ref(path_fd(), 2, 5);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, InodeTable::kRootId);
  ASSERT_NE(t.get(a), nullptr);
  EXPECT_EQ(t.get(a)->nlookup, 2u);
  ASSERT_TRUE(t.get(a)->fd);
  EXPECT_TRUE(t.get(a)->fd->valid());
}

TEST(InodeTable, ForgetClampsAndNeverUnderflows) {
  InodeTable t(path_fd(), 1, 2, 10, 10);
  const uint64_t a = t.ref(path_fd(), 1, 5);
  t.ref(path_fd(), 1, 5);
  EXPECT_EQ(t.forget(a, 1), 0u);
  EXPECT_EQ(t.get(a)->nlookup, 1u);
  EXPECT_EQ(t.forget(a, UINT64_MAX), UINT64_MAX - 1);  // excess reported
  EXPECT_EQ(t.get(a), nullptr);
  EXPECT_EQ(t.forget(a, 1), 0u);  // unknown: ignored
  // A re-lookup gets a fresh id with count 1.
  const uint64_t again = t.ref(path_fd(), 1, 5);
  EXPECT_NE(again, a);
  EXPECT_EQ(t.get(again)->nlookup, 1u);
}

TEST(InodeTable, RootIsNeverDropped) {
  InodeTable t(path_fd(), 1, 2, 10, 10);
  t.forget(InodeTable::kRootId, 1000);
  ASSERT_NE(t.get(InodeTable::kRootId), nullptr);
  EXPECT_EQ(t.ref(path_fd(), 1, 2), InodeTable::kRootId);
}

TEST(InodeTable, RefKnownAddsAReferenceWithoutAnFd) {
  InodeTable t(path_fd(), 1, 2, 10, 1);
  EXPECT_EQ(t.ref_known(1, 5, InodeTable::kRootId, "a"), 0u);  // not held: the caller opens it
  EXPECT_EQ(t.size(), 1u);
  const uint64_t a = t.ref(path_fd(), 1, 5, InodeTable::kRootId, "a");
  t.ref(path_fd(), 1, 6, InodeTable::kRootId, "b");  // evicts a's fd (max_fds 1)
  ASSERT_FALSE(t.get(a)->fd);
  EXPECT_EQ(t.ref_known(1, 5, InodeTable::kRootId, "a2"), a);
  EXPECT_EQ(t.get(a)->nlookup, 2u);
  EXPECT_FALSE(t.get(a)->fd);  // still evicted: nothing was opened
  EXPECT_EQ(t.get(a)->name, "a2");  // the name it was just seen by
  EXPECT_EQ(t.forget(a, 2), 0u);
  EXPECT_EQ(t.get(a), nullptr);
}

TEST(InodeTable, AForgottenNodeidStaysUnknownAfterItsSlotIsReused) {
  InodeTable t(path_fd(), 1, 2, 10, 10);
  const uint64_t a = t.ref(path_fd(), 1, 5);
  t.forget(a, 1);
  const uint64_t b = t.ref(path_fd(), 1, 6);
  EXPECT_EQ(b & 0xffffffffu, a & 0xffffffffu);  // the slot a left, reused...
  EXPECT_NE(b, a);                              // ...under a new generation
  EXPECT_EQ(t.get(a), nullptr);
  EXPECT_FALSE(t.known(a));
  EXPECT_EQ(t.forget(a, 1), 0u);  // a stale FORGET leaves b alone
  ASSERT_NE(t.get(b), nullptr);
  EXPECT_EQ(t.get(b)->ino, 6u);
  for (const uint64_t bogus : {uint64_t{0}, uint64_t{1} << 32, ~uint64_t{0}, b + 1}) EXPECT_FALSE(t.known(bogus)) << bogus;
}

TEST(InodeTable, ThousandsOfNodesAreFoundByIdAndByDevIno) {
  constexpr ino_t kNodes = 5000;  // the (dev, ino) index grows many times over
  InodeTable t(path_fd(), 1, 2, kNodes + 1, 16);
  std::vector<uint64_t> ids;
  for (ino_t i = 0; i < kNodes; ++i) ids.push_back(t.ref(path_fd(), 7, 100 + i));
  for (ino_t i = 0; i < kNodes; ++i) {
    ASSERT_EQ(t.find(7, 100 + i), ids[i]);
    ASSERT_EQ(t.get(ids[i])->ino, 100 + i);
  }
  for (ino_t i = 0; i < kNodes; i += 2) t.forget(ids[i], 1);
  EXPECT_EQ(t.size(), 1 + kNodes / 2);
  for (ino_t i = 0; i < kNodes; ++i) ASSERT_EQ(t.find(7, 100 + i), i % 2 ? ids[i] : 0u) << i;
  EXPECT_EQ(t.find(1, 2), InodeTable::kRootId);
}

TEST(InodeTable, BoundedSize) {
  InodeTable t(path_fd(), 1, 2, 3, 3);
  EXPECT_NE(t.ref(path_fd(), 1, 10), 0u);
  EXPECT_NE(t.ref(path_fd(), 1, 11), 0u);
  EXPECT_EQ(t.ref(path_fd(), 1, 12), 0u);
  EXPECT_EQ(t.size(), 3u);
}

}  // namespace
}  // namespace ksbox::devices::fs
