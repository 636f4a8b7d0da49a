#include "cli/options.h"

#include <gtest/gtest.h>

#include <map>

#include "protocol/exec_protocol.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

TEST(ParseUser, UidAndOptionalGid) {
  auto u = parse_user("1000");
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, protocol::kDefaultId);
  u = parse_user("0:27");
  EXPECT_EQ(u.uid, 0u);
  EXPECT_EQ(u.gid, 27u);
}

TEST(ParseUser, RefusesNamesJunkAndTheReservedId) {
  for (const char* bad : {"", "root", "1000:", ":5", "1x", "-1", "4294967295", "1:4294967295", "1:2:3", "99999999999"})
    EXPECT_THROW(parse_user(bad), Error) << bad;
}

TEST(ResolveEnv, CopiesHostValuesAndDropsUnset) {
  const std::map<std::string, std::string> host = {{"HOSTVAR", "from host"}, {"EMPTY", ""}};
  const auto lookup = [&](const std::string& n) -> std::optional<std::string> {
    auto it = host.find(n);
    return it == host.end() ? std::nullopt : std::optional(it->second);
  };
  EXPECT_EQ(resolve_env({"A=1", "HOSTVAR", "UNSET", "EMPTY", "B==x", "C="}, lookup),
            (std::vector<std::string>{"A=1", "HOSTVAR=from host", "EMPTY=", "B==x", "C="}));
}

TEST(ResolveEnv, RefusesEmptyNames) {
  const auto none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_THROW(resolve_env({"=x"}, none), Error);
  EXPECT_THROW(resolve_env({""}, none), Error);
}

TEST(ParseDetachKey, ControlKeysAndNone) {
  EXPECT_EQ(parse_detach_key("ctrl-]"), uint8_t{0x1d});
  EXPECT_EQ(parse_detach_key("^]"), uint8_t{0x1d});
  EXPECT_EQ(parse_detach_key("ctrl-a"), uint8_t{0x01});
  EXPECT_EQ(parse_detach_key("Ctrl-P"), uint8_t{0x10});
  EXPECT_EQ(parse_detach_key("none"), std::nullopt);
  for (const char* bad : {"", "]", "ctrl-", "ctrl-ab", "ctrl-1", "^", "alt-x", "ctrl-~"})
    EXPECT_THROW(parse_detach_key(bad), Error) << bad;
}

TEST(ParseSeconds, FractionsAndLimits) {
  EXPECT_EQ(parse_seconds(0.25, "--t").count(), 250);
  EXPECT_EQ(parse_seconds(30, "--t").count(), 30'000);
  EXPECT_EQ(parse_seconds(0, "--t").count(), 0);
  EXPECT_THROW(parse_seconds(-1, "--t"), Error);
  EXPECT_THROW(parse_seconds(1e300, "--t"), Error);
}

}  // namespace
}  // namespace ksbox::cli
