// The value rules of SandboxConfig (names, modes, sizing), shared by the
// file parser and by the callers that fill a config from command-line flags.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "cli/config.h"
#include "cli/config_rules.h"
#include "vmm/machine_config.h"

namespace ksbox::cli {
namespace {

constexpr size_t kMaxNameBytes = 63;
constexpr size_t kMaxDomainBytes = 253;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_name_char(char c) { return is_lower_alnum(c) || c == '.' || c == '_' || c == '-'; }

template <typename Enum, size_t N>
std::optional<Enum> parse_enum(const std::array<std::pair<Enum, std::string_view>, N>& names, std::string_view text) {
  for (const auto& [value, name] : names)
    if (name == text) return value;
  return std::nullopt;
}

template <typename Enum, size_t N>
std::string_view enum_name(const std::array<std::pair<Enum, std::string_view>, N>& names, Enum value) {
  for (const auto& [v, name] : names)
    if (v == value) return name;
  return "?";
}

constexpr std::array kNetworkModes = {std::pair{NetworkMode::kOff, std::string_view{"off"}},
                                      std::pair{NetworkMode::kUser, std::string_view{"user"}},
                                      std::pair{NetworkMode::kFiltered, std::string_view{"filtered"}}};
constexpr std::array kSyncModes = {std::pair{SyncMode::kManual, std::string_view{"manual"}},
                                   std::pair{SyncMode::kAutoCommit, std::string_view{"auto-commit"}},
                                   std::pair{SyncMode::kAutoIdle, std::string_view{"auto-idle"}}};
constexpr std::array kWorkspaceModes = {std::pair{WorkspaceMode::kClone, std::string_view{"clone"}},
                                        std::pair{WorkspaceMode::kLive, std::string_view{"live"}}};
constexpr std::array kImageKinds = {std::pair{ImageKind::kAuto, std::string_view{"auto"}},
                                    std::pair{ImageKind::kRootfs, std::string_view{"rootfs"}},
                                    std::pair{ImageKind::kInitramfs, std::string_view{"initramfs"}}};

// A DNS name of 1..253 bytes, labels of 1..63 letters, digits and inner '-'.
bool is_domain(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomainBytes) return false;
  size_t start = 0;
  while (start <= d.size()) {
    const size_t dot = std::min(d.find('.', start), d.size());
    const std::string_view label = d.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    start = dot + 1;
  }
  return true;
}

bool is_env_name(std::string_view n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n.front()))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// git config values: one line, no NUL.
bool is_one_line(std::string_view s) { return s.find_first_of(std::string_view("\n\r\0", 3)) == std::string_view::npos; }

}  // namespace

std::string_view to_string(NetworkMode mode) { return enum_name(kNetworkModes, mode); }
std::string_view to_string(SyncMode mode) { return enum_name(kSyncModes, mode); }
std::string_view to_string(WorkspaceMode mode) { return enum_name(kWorkspaceModes, mode); }
std::string_view to_string(ImageKind kind) { return enum_name(kImageKinds, kind); }
std::optional<NetworkMode> parse_network_mode(std::string_view text) { return parse_enum(kNetworkModes, text); }
std::optional<SyncMode> parse_sync_mode(std::string_view text) { return parse_enum(kSyncModes, text); }
std::optional<WorkspaceMode> parse_workspace_mode(std::string_view text) {
  return parse_enum(kWorkspaceModes, text);
}

std::optional<ImageKind> parse_image_kind(std::string_view text) { return parse_enum(kImageKinds, text); }

std::optional<uint64_t> parse_disk_size(std::string_view text) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end == text.data()) return std::nullopt;
  std::string unit(end, text.data() + text.size());
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) unit.resize(unit.size() - 2);
  const int shift = unit == "M" ? 20 : unit == "G" ? 30 : unit == "T" ? 40 : -1;
  if (shift < 0 || n > (uint64_t{1} << (63 - shift))) return std::nullopt;
  return n << shift;
}

std::string format_disk_size(uint64_t bytes) {
  constexpr uint64_t kGiB = uint64_t{1} << 30, kTiB = uint64_t{1} << 40;
  if (bytes % kTiB == 0 && bytes > 0) return fmt::format("{}T", bytes / kTiB);
  if (bytes % kGiB == 0) return fmt::format("{}G", bytes / kGiB);
  return fmt::format("{}M", bytes >> 20);
}

std::string network_mode_names() { return "off, user, filtered"; }
std::string sync_mode_names() { return "manual, auto-commit, auto-idle"; }
std::string workspace_mode_names() { return "clone, live"; }
std::string image_kind_names() { return "auto, rootfs, initramfs"; }

std::optional<std::string> name_problem(std::string_view name) {
  if (!name.empty() && name.size() <= kMaxNameBytes && is_lower_alnum(name.front()) &&
      std::all_of(name.begin(), name.end(), is_name_char))
    return std::nullopt;
  return fmt::format("'{}' is not a valid sandbox name: use 1-{} characters a-z, 0-9, '.', '_', '-', "
                     "starting with a letter or digit",
                     name, kMaxNameBytes);
}

void validate_name(std::string_view name) {
  if (auto problem = name_problem(name)) throw ConfigError(*problem);
}

std::string default_name_for(const std::filesystem::path& project_root) {
  std::filesystem::path p = std::filesystem::absolute(project_root).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "dir/" normalizes to "dir/"
  std::string name;
  for (char c : p.filename().string()) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (is_name_char(l))
      name += l;
    else if (!name.empty() && name.back() != '-')
      name += '-';
  }
  const auto first = std::find_if(name.begin(), name.end(), is_lower_alnum);
  name.erase(name.begin(), first);
  if (name.size() > kMaxNameBytes) name.resize(kMaxNameBytes);
  while (!name.empty() && !is_lower_alnum(name.back())) name.pop_back();
  return name.empty() ? "sandbox" : name;
}

std::filesystem::path share_host_dir(const ShareSpec& share, const std::filesystem::path& project_root) {
  const std::filesystem::path dir(share.host_dir);
  return (dir.is_absolute() ? dir : project_root / dir).lexically_normal();
}

const std::vector<std::string>& agent_key_names() {
  static const std::vector<std::string> names = {
      "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "GEMINI_API_KEY",
      "GOOGLE_API_KEY",    "OPENAI_API_KEY",       "OPENROUTER_API_KEY",
  };
  return names;
}

std::vector<std::string> forwarded_env_names(const SandboxConfig& config) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  auto add = [&](const std::string& n) {
    if (seen.insert(n).second) names.push_back(n);
  };
  for (const auto& n : config.env) add(n);
  if (config.forward_agent_keys)
    for (const auto& n : agent_key_names()) add(n);
  return names;
}

void check_values(const SandboxConfig& c, const KeyErrorFn& fail) {
  if (!c.name.empty())
    if (auto problem = name_problem(c.name)) fail("name", *problem);
  if (c.memory_mib && *c.memory_mib < kMinMemoryMiB)
    fail("memory_mib", fmt::format("{} MiB is below the minimum of {} MiB", *c.memory_mib, kMinMemoryMiB));
  if (c.vcpus && *c.vcpus == 0) fail("vcpus", "must be at least 1");
  for (size_t i = 0; i < c.allow.size(); ++i)
    if (!is_domain(c.allow[i]))
      fail(fmt::format("allow[{}]", i),
           fmt::format("'{}' is not a domain name (a suffix such as github.com, which covers api.github.com)",
                       c.allow[i]));
  for (size_t i = 0; i < c.env.size(); ++i)
    if (!is_env_name(c.env[i]))
      fail(fmt::format("env[{}]", i), fmt::format("'{}' is not a variable name (give names only: the values "
                                                  "are read from the host's environment at each exec)",
                                                  c.env[i]));
  // The workspace takes one of the VMM's virtio-fs slots.
  if (c.shares.size() > kMaxShares - 1)
    fail("shares", fmt::format("{} shares; at most {} besides the workspace", c.shares.size(), kMaxShares - 1));
  std::set<std::string> tags;
  for (size_t i = 0; i < c.shares.size(); ++i) {
    const ShareSpec& s = c.shares[i];
    const std::string at = fmt::format("shares[{}]", i);
    if (s.tag.empty() || s.tag.size() > kMaxShareTagBytes || !is_lower_alnum(s.tag.front()) ||
        !std::all_of(s.tag.begin(), s.tag.end(), is_name_char))
      fail(at + ".tag", fmt::format("'{}' is not a valid tag: use 1-{} characters a-z, 0-9, '.', '_', '-', "
                                    "starting with a letter or digit",
                                    s.tag, kMaxShareTagBytes));
    if (s.tag == kWorkspaceTag) fail(at + ".tag", fmt::format("'{}' is the workspace's own tag", s.tag));
    if (!tags.insert(s.tag).second) fail(at + ".tag", fmt::format("'{}' is used by an earlier share", s.tag));
    if (s.host_dir.empty()) fail(at + ".host_dir", "must not be empty");
    if (s.host_dir.find('\0') != std::string::npos) fail(at + ".host_dir", "contains a NUL byte");
  }
  if (c.idle_seconds == 0 || c.idle_seconds > kMaxIdleSeconds)
    fail("idle_seconds", fmt::format("{} is not between 1 and {}", c.idle_seconds, kMaxIdleSeconds));
  if (c.disk_size && (*c.disk_size < kMinDiskSize || *c.disk_size > kMaxDiskSize))
    fail("disk_size", fmt::format("{} is not between {} and {}", format_disk_size(*c.disk_size),
                                  format_disk_size(kMinDiskSize), format_disk_size(kMaxDiskSize)));
  if (c.git_name && (c.git_name->empty() || !is_one_line(*c.git_name)))
    fail("git_name", "must be one non-empty line");
  if (c.git_email && (c.git_email->empty() || !is_one_line(*c.git_email)))
    fail("git_email", "must be one non-empty line");
  const std::pair<const char*, const std::vector<std::string>*> hooks[] = {
      {"pre_up", &c.hooks.pre_up},
      {"post_up", &c.hooks.post_up},
      {"pre_down", &c.hooks.pre_down},
      {"post_down", &c.hooks.post_down}};
  for (const auto& [phase, commands] : hooks)
    for (size_t i = 0; i < commands->size(); ++i)
      if ((*commands)[i].find_first_not_of(" \t\n") == std::string::npos ||
          (*commands)[i].find('\0') != std::string::npos)
        fail(fmt::format("hooks.{}[{}]", phase, i), "must be a non-empty shell command line");
}

void validate_config(const SandboxConfig& config, std::string_view source_name) {
  check_values(config, [&](const std::string& key, const std::string& problem) {
    throw ConfigError(fmt::format("{}: {}: {}", source_name, key, problem));
  });
}

Resources resolve_resources(const SandboxConfig& c, uint64_t host_mib, unsigned host_cpus) {
  Resources r{};
  if (c.memory_mib) {
    r.memory_mib = *c.memory_mib;
    if (r.memory_mib < kMinMemoryMiB)
      throw ConfigError(
          fmt::format("memory_mib: {} MiB is below the minimum of {} MiB", r.memory_mib, kMinMemoryMiB));
    if (host_mib && r.memory_mib > host_mib)
      throw ConfigError(fmt::format("memory_mib: {} MiB is more than the host's {} MiB", r.memory_mib, host_mib));
  } else {
    // A quarter of the host within 1..8 GiB, but never more than half of it:
    // the guest allocates on use, yet an agent's build should not push the
    // host into swap.
    // Unknown host memory (0): 1 GiB.
    r.memory_mib = host_mib ? std::min(std::clamp<uint64_t>(host_mib / 4, 1024, 8192), host_mib / 2) : 1024;
    if (r.memory_mib < kMinMemoryMiB)
      throw ConfigError(fmt::format("memory_mib: the host has {} MiB, too little for a sandbox of at least {} MiB",
                                    host_mib, kMinMemoryMiB));
  }
  if (c.vcpus) {
    r.vcpus = *c.vcpus;
    if (r.vcpus == 0) throw ConfigError("vcpus: must be at least 1");
    if (host_cpus && r.vcpus > host_cpus)
      throw ConfigError(fmt::format("vcpus: {} is more than the host's {} CPUs", r.vcpus, host_cpus));
  } else {
    r.vcpus = std::clamp(host_cpus / 2, 1u, 8u);
  }
  return r;
}

}  // namespace ksbox::cli
