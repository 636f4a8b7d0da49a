#include "devices/fs/fuse_wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ksbox::devices::fs {
namespace {

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
std::string str(const std::vector<char>& v) { return {v.data(), v.size()}; }

TEST(RequestReaderCstring, FindsTheNulInALaterSpanPastEmptyOnes) {
  const std::string a = "ab", b, c = std::string("cd\0", 3) + "xy";
  const std::vector<std::span<const uint8_t>> spans{bytes(a), bytes(b), bytes(c)};
  RequestReader r(spans, 7);
  std::vector<char> out;
  ASSERT_TRUE(r.read_cstring(255, out));
  EXPECT_EQ(str(out), "abcd");
  EXPECT_EQ(r.remaining(), 2u);  // the string and its NUL consumed, no more
  char rest[2];
  ASSERT_TRUE(r.read(rest, 2));
  EXPECT_EQ(std::string(rest, 2), "xy");
}

TEST(RequestReaderCstring, AStringOfMaxLenFitsOneLongerDoesNot) {
  const std::string exact = std::string(8, 'n') + '\0';
  const std::string over = std::string(9, 'n') + '\0';
  std::vector<char> out;
  const std::vector<std::span<const uint8_t>> s1{bytes(exact)};
  RequestReader r1(s1, exact.size());
  ASSERT_TRUE(r1.read_cstring(8, out));
  EXPECT_EQ(out.size(), 8u);
  const std::vector<std::span<const uint8_t>> s2{bytes(over)};
  RequestReader r2(s2, over.size());
  EXPECT_FALSE(r2.read_cstring(8, out));
  EXPECT_EQ(r2.remaining(), over.size());  // nothing consumed
}

TEST(RequestReaderCstring, NeverLooksPastTheLimit) {
  const std::string s = std::string("abc") + '\0';  // the NUL lies beyond the limit
  const std::vector<std::span<const uint8_t>> spans{bytes(s)};
  RequestReader r(spans, 3);
  std::vector<char> out;
  EXPECT_FALSE(r.read_cstring(255, out));
  const std::string empty(1, '\0');
  const std::vector<std::span<const uint8_t>> e{bytes(empty)};
  RequestReader re(e, 1);
  ASSERT_TRUE(re.read_cstring(255, out));
  EXPECT_TRUE(out.empty());
}

TEST(ValidName, OneComponentOnly) {
  EXPECT_TRUE(valid_name("a"));
  EXPECT_TRUE(valid_name("...") && valid_name(".a") && valid_name(std::string(255, 'x')));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name("."));
  EXPECT_FALSE(valid_name(".."));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_FALSE(valid_name("/"));
  EXPECT_FALSE(valid_name(std::string("a\0b", 3)));
  EXPECT_FALSE(valid_name(std::string(256, 'x')));
}

}  // namespace
}  // namespace ksbox::devices::fs
