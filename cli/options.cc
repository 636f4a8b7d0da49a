#include "cli/options.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "protocol/exec_protocol.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

std::optional<uint32_t> parse_id(std::string_view s) {
  uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v == protocol::kDefaultId) return std::nullopt;
  return v;
}

}  // namespace

UserSpec parse_user(std::string_view spec) {
  const size_t colon = spec.find(':');
  const auto uid = parse_id(spec.substr(0, colon));
  const auto gid = colon == std::string_view::npos ? std::optional(protocol::kDefaultId) : parse_id(spec.substr(colon + 1));
  if (!uid || !gid)
    throw Error(fmt::format("--user '{}': expected a numeric UID or UID:GID (0..4294967294)", spec));
  return {*uid, *gid};
}

std::vector<std::string> resolve_env(const std::vector<std::string>& specs, const EnvLookup& lookup) {
  std::vector<std::string> env;
  for (const auto& s : specs) {
    const size_t eq = s.find('=');
    if (eq == 0 || s.empty()) throw Error(fmt::format("--env '{}': expected NAME=VALUE or NAME", s));
    if (eq != std::string::npos) {
      env.push_back(s);
    } else if (auto v = lookup(s)) {
      env.push_back(s + "=" + *v);
    }
  }
  return env;
}

std::optional<std::string> host_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

std::optional<uint8_t> parse_detach_key(std::string_view spec) {
  if (spec == "none") return std::nullopt;
  std::string_view key;
  if (spec.size() == 6 && (spec.starts_with("ctrl-") || spec.starts_with("Ctrl-") || spec.starts_with("CTRL-")))
    key = spec.substr(5);
  else if (spec.size() == 2 && spec[0] == '^')
    key = spec.substr(1);
  const char c = key.size() == 1 ? static_cast<char>(std::toupper(static_cast<unsigned char>(key[0]))) : '\0';
  if (c < '@' || c > '_')
    throw Error(fmt::format("--detach-key '{}': expected 'none', 'ctrl-X' or '^X' (X one of @ A-Z [ \\ ] ^ _)", spec));
  return static_cast<uint8_t>(c - '@');
}

std::chrono::milliseconds parse_seconds(double seconds, std::string_view option) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 86400.0 * 365)
    throw Error(fmt::format("{} {}: expected a number of seconds >= 0", option, seconds));
  return std::chrono::milliseconds(static_cast<long long>(std::llround(seconds * 1000.0)));
}

}  // namespace ksbox::cli
