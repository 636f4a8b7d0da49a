#include "cli/config_command.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vmm/atomic_file.h"
#include "cli/exit_codes.h"
#include "cli/host_checks.h"

namespace ksbox::cli {
namespace {

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : std::string(sep)) + i;
  return s;
}

std::string or_none(const std::vector<std::string>& items) { return items.empty() ? "-" : join(items); }

void print_text(const SandboxConfig& c, const Resources& r, std::ostream& out) {
  auto line = [&](std::string_view key, const std::string& value) { out << fmt::format("{:<19} {}\n", key, value); };
  line("name", c.name);
  line("memory_mib", fmt::format("{}{}", r.memory_mib, c.memory_mib ? "" : " (sized to the host)"));
  line("vcpus", fmt::format("{}{}", r.vcpus, c.vcpus ? "" : " (sized to the host)"));
  line("network", std::string(to_string(c.network)));
  line("allow", or_none(c.allow));
  line("env", or_none(c.env));
  line("forward_agent_keys", c.forward_agent_keys ? "true (" + join(agent_key_names()) + ", when set)" : "false");
  std::vector<std::string> shares;
  for (const ShareSpec& s : c.shares) shares.push_back(fmt::format("{}={}{}", s.tag, s.host_dir, s.read_only ? ":ro" : ""));
  line("shares", or_none(shares));
  line("sync_mode", std::string(to_string(c.sync_mode)));
  line("idle_seconds", std::to_string(c.idle_seconds));
  line("workspace", std::string(to_string(c.workspace)));
  line("image", std::string(to_string(c.image)));
  line("disk_size", c.disk_size ? format_disk_size(*c.disk_size) : format_disk_size(kDefaultDiskSize) + " (default)");
  line("git_name", c.git_name.value_or("(the host's user.name)"));
  line("git_email", c.git_email.value_or("(the host's user.email)"));
  line("hooks.pre_up", or_none(c.hooks.pre_up));
  line("hooks.post_up", or_none(c.hooks.post_up));
  line("hooks.pre_down", or_none(c.hooks.pre_down));
  line("hooks.post_down", or_none(c.hooks.post_down));
}

}  // namespace

int run_init_command(const std::filesystem::path& project_root, bool force, const std::optional<std::string>& name,
                     std::ostream& out, std::ostream& err) {
  const std::filesystem::path path = project_root / kConfigFileName;
  try {
    struct stat st{};
    if (::stat(project_root.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) {
      err << fmt::format("ksbox: {} is not a directory\n", project_root.string());
      return kExitFailure;
    }
    if (!force && ::lstat(path.c_str(), &st) == 0) {
      err << fmt::format("ksbox: {} already exists; use --force to replace it with the defaults\n", path.string());
      return kExitFailure;
    }
    SandboxConfig config;
    config.name = name.value_or(default_name_for(project_root));
    validate_name(config.name);
    write_file_atomic(path, to_json(config) + "\n");
    out << fmt::format("wrote {} (sandbox name '{}')\n", path.string(), config.name);
    return kExitOk;
  } catch (const Error& e) {
    err << "ksbox: " << e.what() << "\n";
    return kExitFailure;
  }
}

int run_config_command(const SandboxConfig& resolved, bool json, std::ostream& out, std::ostream& err) {
  Resources r{};
  try {
    r = resolve_resources(resolved, host_memory_total_mib(), host_cpu_count());
  } catch (const ConfigError& e) {
    err << "ksbox: " << e.what() << "\n";
    return kExitFailure;
  }
  if (json) {
    SandboxConfig c = resolved;
    c.memory_mib = r.memory_mib;
    c.vcpus = r.vcpus;
    out << to_json(c) << "\n";
  } else {
    print_text(resolved, r, out);
  }
  return kExitOk;
}

}  // namespace ksbox::cli
