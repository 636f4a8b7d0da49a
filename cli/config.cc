// .ksbox.json: JSON (comments allowed) into SandboxConfig and back. Types
// are checked here, values by check_values(); every error names its key.
#include "cli/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/config_rules.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// A config is a few hundred bytes; refuse to slurp a huge file by mistake.
constexpr size_t kMaxConfigBytes = 1 << 20;

class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw ConfigError(fmt::format("{}: {}: {}", source_, key, problem));
  }

  [[noreturn]] void wrong_type(const std::string& key, const char* expected, const Json& v) const {
    fail(key, fmt::format("expected {}, got {}", expected, describe(v)));
  }

  std::string string(const Json& v, const std::string& key) const {
    if (!v.is_string()) wrong_type(key, "a string", v);
    return v.get<std::string>();
  }

  bool boolean(const Json& v, const std::string& key) const {
    if (!v.is_boolean()) wrong_type(key, "true or false", v);
    return v.get<bool>();
  }

  uint64_t whole_number(const Json& v, const std::string& key, uint64_t max) const {
    if (!v.is_number_unsigned()) wrong_type(key, "a whole number >= 0", v);
    const auto n = v.get<uint64_t>();
    if (n > max) fail(key, fmt::format("{} is too large (at most {})", n, max));
    return n;
  }

  std::vector<std::string> strings(const Json& v, const std::string& key) const {
    if (!v.is_array()) wrong_type(key, "an array of strings", v);
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) out.push_back(string(v[i], fmt::format("{}[{}]", key, i)));
    return out;
  }

  template <typename Enum>
  Enum mode(const Json& v, const std::string& key, std::optional<Enum> (*parse)(std::string_view),
            const std::string& names) const {
    const std::string s = string(v, key);
    const std::optional<Enum> m = parse(s);
    if (!m) fail(key, fmt::format("'{}' is not one of: {}", s, names));
    return *m;
  }

  // Calls on_key(key, value) for each member of an object; `known` lists
  // the accepted keys (for the unknown-key message).
  template <typename F>
  void members(const Json& obj, const std::string& key, std::initializer_list<const char*> known, F on_key) const {
    if (!obj.is_object()) wrong_type(key.empty() ? "(top level)" : key, "an object", obj);
    for (const auto& [k, v] : obj.items()) {
      const std::string path = key.empty() ? k : key + "." + k;
      bool found = false;
      for (const char* kn : known) found = found || k == kn;
      if (!found) {
        std::string list;
        for (const char* kn : known) list += (list.empty() ? "" : ", ") + std::string(kn);
        fail(path, fmt::format("unknown key (known here: {})", list));
      }
      on_key(k, path, v);
    }
  }

 private:
  static std::string describe(const Json& v) {
    if (v.is_string()) return fmt::format("the string {}", v.dump());
    if (v.is_number_integer() || v.is_number_float()) return fmt::format("the number {}", v.dump());
    if (v.is_boolean()) return v.dump();
    return v.type_name();
  }

  std::string source_;
};

template <typename T>
Json optional_value(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

SandboxConfig parse_config(std::string_view json_text, std::string_view source_name) {
  Json root;
  try {
    root = Json::parse(json_text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    // Drop the "[json.exception.parse_error.101] " prefix.
    std::string_view what = e.what();
    if (const size_t end = what.find("] "); what.starts_with("[json.exception") && end != what.npos)
      what.remove_prefix(end + 2);
    throw ConfigError(fmt::format("{}: invalid JSON: {}", source_name, what));
  }

  const Reader r(source_name);
  SandboxConfig c;
  constexpr uint64_t kMaxUnsigned = std::numeric_limits<unsigned>::max();
  r.members(root, "",
            {"name", "memory_mib", "vcpus", "network", "allow", "env", "forward_agent_keys", "shares", "sync_mode",
             "idle_seconds", "workspace", "image", "disk_size", "git_name", "git_email", "hooks"},
            [&](const std::string& k, const std::string& path, const Json& v) {
              if (k == "name") {
                c.name = r.string(v, path);
              } else if (k == "memory_mib") {
                c.memory_mib.reset();
                if (!v.is_null()) c.memory_mib = r.whole_number(v, path, uint64_t{1} << 40);
              } else if (k == "vcpus") {
                c.vcpus.reset();
                if (!v.is_null()) c.vcpus = static_cast<unsigned>(r.whole_number(v, path, kMaxUnsigned));
              } else if (k == "network") {
                c.network = r.mode(v, path, parse_network_mode, network_mode_names());
              } else if (k == "allow") {
                c.allow = r.strings(v, path);
              } else if (k == "env") {
                c.env = r.strings(v, path);
              } else if (k == "forward_agent_keys") {
                c.forward_agent_keys = r.boolean(v, path);
              } else if (k == "shares") {
                if (!v.is_array()) r.wrong_type(path, "an array of objects", v);
                c.shares.clear();
                for (size_t i = 0; i < v.size(); ++i) {
                  ShareSpec s;
                  bool has_tag = false, has_dir = false;
                  const std::string at = fmt::format("{}[{}]", path, i);
                  r.members(v[i], at, {"tag", "host_dir", "read_only"},
                            [&](const std::string& sk, const std::string& sp, const Json& sv) {
                              if (sk == "tag") {
                                s.tag = r.string(sv, sp);
                                has_tag = true;
                              } else if (sk == "host_dir") {
                                s.host_dir = r.string(sv, sp);
                                has_dir = true;
                              } else {
                                s.read_only = r.boolean(sv, sp);
                              }
                            });
                  if (!has_tag) r.fail(at + ".tag", "missing");
                  if (!has_dir) r.fail(at + ".host_dir", "missing");
                  c.shares.push_back(std::move(s));
                }
              } else if (k == "sync_mode") {
                c.sync_mode = r.mode(v, path, parse_sync_mode, sync_mode_names());
              } else if (k == "idle_seconds") {
                c.idle_seconds = static_cast<unsigned>(r.whole_number(v, path, kMaxUnsigned));
              } else if (k == "workspace") {
                c.workspace = r.mode(v, path, parse_workspace_mode, workspace_mode_names());
              } else if (k == "image") {
                c.image = r.mode(v, path, parse_image_kind, image_kind_names());
              } else if (k == "disk_size") {
                c.disk_size.reset();
                if (!v.is_null()) {
                  const std::string text = r.string(v, path);
                  c.disk_size = parse_disk_size(text);
                  if (!c.disk_size) r.fail(path, fmt::format("'{}' is not a size such as \"8G\" or \"512M\"", text));
                }
              } else if (k == "git_name" || k == "git_email") {
                auto& field = k == "git_name" ? c.git_name : c.git_email;
                field.reset();
                if (!v.is_null()) field = r.string(v, path);
              } else if (k == "hooks") {
                r.members(v, path, {"pre_up", "post_up", "pre_down", "post_down"},
                          [&](const std::string& hk, const std::string& hp, const Json& hv) {
                            if (hk == "pre_up") c.hooks.pre_up = r.strings(hv, hp);
                            if (hk == "post_up") c.hooks.post_up = r.strings(hv, hp);
                            if (hk == "pre_down") c.hooks.pre_down = r.strings(hv, hp);
                            if (hk == "post_down") c.hooks.post_down = r.strings(hv, hp);
                          });
              }
            });
  check_values(c, [&](const std::string& key, const std::string& problem) { r.fail(key, problem); });
  return c;
}

std::optional<SandboxConfig> load_project_config(const std::filesystem::path& project_root) {
  const std::filesystem::path path = project_root / kConfigFileName;
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd && errno == ENOENT) return std::nullopt;
  if (!fd) throw ConfigError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError(fmt::format("{}: cannot read: {}", path.string(), std::strerror(errno)));
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes)
      throw ConfigError(fmt::format("{}: larger than {} bytes", path.string(), kMaxConfigBytes));
  }
  return parse_config(text, path.string());
}

std::string to_json(const SandboxConfig& c, int indent) {
  OrderedJson shares = OrderedJson::array();
  for (const ShareSpec& s : c.shares)
    shares.push_back(OrderedJson{{"tag", s.tag}, {"host_dir", s.host_dir}, {"read_only", s.read_only}});
  const OrderedJson j = {
      {"name", c.name},
      {"memory_mib", optional_value(c.memory_mib)},
      {"vcpus", optional_value(c.vcpus)},
      {"network", to_string(c.network)},
      {"allow", c.allow},
      {"env", c.env},
      {"forward_agent_keys", c.forward_agent_keys},
      {"shares", shares},
      {"sync_mode", to_string(c.sync_mode)},
      {"idle_seconds", c.idle_seconds},
      {"workspace", to_string(c.workspace)},
      {"image", to_string(c.image)},
      {"disk_size", c.disk_size ? Json(format_disk_size(*c.disk_size)) : Json(nullptr)},
      {"git_name", optional_value(c.git_name)},
      {"git_email", optional_value(c.git_email)},
      {"hooks",
       OrderedJson{{"pre_up", c.hooks.pre_up},
                   {"post_up", c.hooks.post_up},
                   {"pre_down", c.hooks.pre_down},
                   {"post_down", c.hooks.post_down}}},
  };
  // Values from the command line need not be UTF-8: replace rather than throw.
  return j.dump(indent, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace ksbox::cli
