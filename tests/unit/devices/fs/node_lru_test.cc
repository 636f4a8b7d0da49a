// NodeLru: values by nodeid, most recently used first, dropped from the back.
#include "devices/fs/node_lru.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ksbox::devices::fs {
namespace {

TEST(NodeLruTest, FindsWhatWasPushedAndNothingElse) {
  NodeLru<std::string> lru;
  EXPECT_TRUE(lru.empty());
  EXPECT_EQ(lru.use(7), nullptr);
  lru.push_front(7, "seven");
  lru.push_front(9, "nine");
  ASSERT_NE(lru.use(7), nullptr);
  EXPECT_EQ(*lru.use(7), "seven");
  EXPECT_EQ(*lru.use(9), "nine");
  EXPECT_EQ(lru.use(8), nullptr);
  EXPECT_EQ(lru.size(), 2u);
}

TEST(NodeLruTest, PopBackDropsTheLeastRecentlyUsed) {
  NodeLru<int> lru;
  for (uint64_t n = 1; n <= 3; ++n) lru.push_front(n, static_cast<int>(n * 10));
  lru.use(1);  // order now 1, 3, 2
  lru.pop_back();
  EXPECT_EQ(lru.use(2), nullptr);
  lru.pop_back();
  EXPECT_EQ(lru.use(3), nullptr);
  ASSERT_NE(lru.use(1), nullptr);
  EXPECT_EQ(*lru.use(1), 10);
  lru.pop_back();
  EXPECT_TRUE(lru.empty());
  lru.pop_back();  // on empty: nothing
  EXPECT_TRUE(lru.empty());
}

TEST(NodeLruTest, EraseDropsOneNodeAndItsValue) {
  NodeLru<std::shared_ptr<int>> lru;
  auto held = std::make_shared<int>(5);
  lru.push_front(5, held);
  lru.push_front(6, std::make_shared<int>(6));
  EXPECT_EQ(held.use_count(), 2);
  lru.erase(5);
  EXPECT_EQ(held.use_count(), 1);  // the value went with it
  EXPECT_EQ(lru.use(5), nullptr);
  lru.erase(5);  // again: nothing
  EXPECT_EQ(lru.size(), 1u);
  EXPECT_NE(lru.use(6), nullptr);
}

TEST(NodeLruTest, PushingAHeldNodeReplacesItsValue) {
  NodeLru<int> lru;
  lru.push_front(1, 1);
  lru.push_front(2, 2);
  lru.push_front(1, 100);
  EXPECT_EQ(lru.size(), 2u);
  EXPECT_EQ(*lru.use(1), 100);
  lru.pop_back();  // 2 was the least recently used
  EXPECT_EQ(lru.use(2), nullptr);
  EXPECT_EQ(*lru.use(1), 100);
}

}  // namespace
}  // namespace ksbox::devices::fs
