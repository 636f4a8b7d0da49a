// Parsing of the exec/attach option values that CLI11 leaves as strings.
// Each throws ksbox::Error with a message for the user (a usage error).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox::cli {

struct UserSpec {
  uint32_t uid;
  uint32_t gid;  // protocol::kDefaultId when not given: the agent picks
};
// "UID" or "UID:GID", decimal. 4294967295 is reserved (the agent's default).
UserSpec parse_user(std::string_view spec);

// -e values: "NAME=VALUE" is taken as is; "NAME" copies lookup(NAME), and is
// dropped when that is unset. An empty name is refused.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::vector<std::string> resolve_env(const std::vector<std::string>& specs, const EnvLookup& lookup);
// lookup through getenv().
std::optional<std::string> host_env(const std::string& name);

// --detach-key: "none" (nullopt), "ctrl-X" or "^X" for X in @, A-Z, [, \, ], ^, _.
std::optional<uint8_t> parse_detach_key(std::string_view spec);

// Seconds (fractions allowed) as a duration; refuses negative and absurd values.
std::chrono::milliseconds parse_seconds(double seconds, std::string_view option);

}  // namespace ksbox::cli
