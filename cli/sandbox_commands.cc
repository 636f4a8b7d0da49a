// stop, status, list, destroy, logs: the sandbox store seen from the CLI.
#include "cli/sandbox_commands.h"

#include <poll.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/config.h"
#include "cli/hooks.h"
#include "cli/idle_sync.h"
#include "cli/host_checks.h"
#include "cli/options.h"
#include "cli/tool_process.h"
#include "cli/vmm_process.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

using nlohmann::json;

void say(const std::string& msg) { std::fprintf(stderr, "ksbox: %s\n", msg.c_str()); }

bool exists(const SandboxPaths& p) {
  std::error_code ec;
  return fs::exists(p.record(), ec);
}

std::string not_found(const std::string& name) {
  return fmt::format("no sandbox named {} (`ksbox list` shows them)", name);
}

// ksbox-git's view of the clone: commits not yet synced, uncommitted files.
std::optional<json> workspace_status(const SandboxPaths& p, const SandboxRecord& rec) {
  if (rec.workspace_mode != "clone") return std::nullopt;
  const auto git = find_sibling_tool("ksbox-git");
  if (!git) return std::nullopt;
  const ToolOutput r = run_tool_capture(
      *git, {"status", "--clone", p.workspace().string(), "--project", rec.project.string(), "--json"});
  if (r.status != 0) return std::nullopt;
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

SandboxConfig project_config(const SandboxRecord& rec) {
  try {
    return load_project_config(rec.project).value_or(SandboxConfig{});
  } catch (const Error& e) {
    say(fmt::format("warning: {} (ignored)", e.what()));
    return {};
  }
}

std::string uptime(int64_t ms) {
  const int64_t s = ms / 1000;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
}

json describe(const std::string& name) {
  const SandboxPaths p = sandbox_paths(name);
  const SandboxRecord rec = read_record(p);
  const SandboxProbe probe = probe_sandbox(p);
  json j = {{"name", rec.name},
            {"state", to_string(probe.state)},
            {"project", rec.project.string()},
            {"workspace", rec.workspace_dir(p).string()},
            {"workspace_mode", rec.workspace_mode},
            {"memory_mib", rec.memory_mib},
            {"vcpus", rec.vcpus},
            {"network", rec.network},
            {"sync_mode", rec.sync_mode},
            {"state_dir", p.dir.string()},
            {"image", rec.image}};
  if (rec.layer) {
    // Sparse: what it holds is what is allocated, not its size.
    struct stat st{};
    j["layer"] = {{"path", p.layer().string()},
                  {"size", rec.layer->size},
                  {"allocated", ::stat(p.layer().c_str(), &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0},
                  {"base_uuid", rec.layer->base_uuid}};
  }
  if (probe.vmm) j["pid"] = probe.vmm->pid;
  if (probe.status && probe.status->contains("uptime_ms")) j["uptime_ms"] = (*probe.status)["uptime_ms"];
  return j;
}

}  // namespace

std::vector<std::string> sandbox_exec_env(const SandboxRecord& rec, const std::vector<std::string>& extra) {
  std::vector<std::string> specs = forwarded_env_names(project_config(rec));
  specs.insert(specs.end(), extra.begin(), extra.end());
  return resolve_env(specs, host_env);
}

std::string resolve_sandbox_name(const std::optional<std::string>& name) {
  if (name) {
    if (!exists(sandbox_paths(*name))) throw Error(not_found(*name));
    return *name;
  }
  const auto root = find_git_root(".");
  if (!root) throw Error("no sandbox given, and the current directory is not in a git project: name one");
  // The sandbox made for this project, whatever its name.
  for (const auto& n : list_sandbox_names()) {
    try {
      if (read_record(sandbox_paths(n)).project == *root) return n;
    } catch (const Error&) {
    }
  }
  throw Error(fmt::format("no sandbox for {} yet: `ksbox run` starts one", root->string()));
}

namespace {

// resolve_sandbox_name, or nullopt after saying why.
std::optional<std::string> resolve_or_say(const std::optional<std::string>& name) {
  try {
    return resolve_sandbox_name(name);
  } catch (const Error& e) {
    say(e.what());
    return std::nullopt;
  }
}

}  // namespace

int stop_command(const std::optional<std::string>& name_arg, bool sync, double timeout_s) {
  const auto found = resolve_or_say(name_arg);
  if (!found) return 1;
  const std::string& name = *found;
  const SandboxPaths p = sandbox_paths(name);
  const SandboxRecord rec = read_record(p);
  const SandboxProbe probe = probe_sandbox(p);
  if (probe.state == SandboxState::kCrashed || probe.state == SandboxState::kStopped) {
    if (auto lock = try_lock(p)) remove_stale_runtime(p);
    say(fmt::format("sandbox {} is not running ({})", name, to_string(probe.state)));
    return probe.state == SandboxState::kCrashed ? 0 : 1;
  }
  const SandboxConfig config = project_config(rec);
  const auto git = find_sibling_tool("ksbox-git");
  if (sync && git) {
    std::vector<std::string> args{"sync", "--clone", p.workspace().string(), "--project", rec.project.string()};
    if (rec.sync_mode != "manual") args.push_back("--auto-commit");
    with_guest_paused(p, [&] { return run_tool(*git, args); });
  } else if (rec.sync_mode == "auto-commit" && git && rec.workspace_mode == "clone") {
    with_guest_paused(p, [&] { return run_tool(*git, {"commit", "--clone", p.workspace().string()}); });
  }
  const std::vector<std::string> hook_env{"KSBOX_SANDBOX=" + name, "KSBOX_STATE_DIR=" + p.dir.string()};
  run_hooks("pre-down", config.hooks.pre_down, rec.project, hook_env);
  stop_idle_sync(p);
  std::string how;
  try {
    how = stop_sandbox(p, parse_seconds(timeout_s, "--timeout"));
  } catch (const Error& e) {
    say(e.what());
    return 1;
  }
  run_hooks("post-down", config.hooks.post_down, rec.project, hook_env);
  say(fmt::format("sandbox {} {}", name, how));
  return 0;
}

int status_command(const std::optional<std::string>& name_arg, bool as_json) {
  const auto found = resolve_or_say(name_arg);
  if (!found) return 1;
  const std::string& name = *found;
  json j = describe(name);
  const SandboxPaths p = sandbox_paths(name);
  if (auto ws = workspace_status(p, read_record(p))) j["sync"] = *ws;
  if (as_json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::string state = j["state"];
  if (j.contains("pid"))
    state += fmt::format(" (pid {}{})", j["pid"].get<int>(),
                         j.contains("uptime_ms") ? ", up " + uptime(j["uptime_ms"].get<int64_t>()) : "");
  std::printf("name:      %s\nstate:     %s\nproject:   %s\nworkspace: %s (%s)\nresources: %u vCPUs, %llu MiB\n"
              "network:   %s\nsync mode: %s\n",
              name.c_str(), state.c_str(), j["project"].get<std::string>().c_str(),
              j["workspace"].get<std::string>().c_str(), j["workspace_mode"].get<std::string>().c_str(),
              j["vcpus"].get<unsigned>(), static_cast<unsigned long long>(j["memory_mib"].get<uint64_t>()),
              j["network"].get<std::string>().c_str(), j["sync_mode"].get<std::string>().c_str());
  if (const std::string image = j["image"]; !image.empty()) {
    std::string line = image == "rootfs" ? "rootfs (Debian root disk)" : image;
    if (j.contains("layer"))
      line += fmt::format(", layer {} MiB allocated of {}", j["layer"]["allocated"].get<uint64_t>() >> 20,
                          format_disk_size(j["layer"]["size"].get<uint64_t>()));
    std::printf("image:     %s\n", line.c_str());
  }
  if (j.contains("sync")) {
    const auto& b = j["sync"]["branch"];  // null when the project's HEAD is detached
    std::printf("to sync:   %d commits ahead of %s, %d uncommitted files\n", j["sync"].value("ahead", 0),
                b.is_string() ? b.get<std::string>().c_str() : "(detached HEAD)", j["sync"].value("uncommitted", 0));
  }
  return 0;
}

int list_command(bool as_json) {
  json all = json::array();
  for (const auto& n : list_sandbox_names()) {
    try {
      all.push_back(describe(n));
    } catch (const Error& e) {
      all.push_back({{"name", n}, {"state", "broken"}, {"error", e.what()}});
    }
  }
  if (as_json) {
    std::printf("%s\n", all.dump(2).c_str());
    return 0;
  }
  if (all.empty()) {
    std::printf("no sandboxes (`ksbox run` in a git project starts one)\n");
    return 0;
  }
  std::printf("%-24s %-9s %s\n", "NAME", "STATE", "PROJECT");
  for (const auto& j : all)
    std::printf("%-24s %-9s %s\n", j["name"].get<std::string>().c_str(), j["state"].get<std::string>().c_str(),
                j.value("project", std::string()).c_str());
  return 0;
}

int destroy_command(const std::string& name, bool force) {
  const SandboxPaths p = sandbox_paths(name);
  std::error_code ec;
  if (!fs::exists(p.dir, ec)) {
    if (force) return 0;  // nothing left: what --force promises
    say(not_found(name));
    return 1;
  }
  std::optional<SandboxRecord> rec;
  try {
    rec = read_record(p);
  } catch (const Error& e) {
    if (!force) {
      say(e.what());
      return 1;
    }
  }
  const SandboxProbe probe = probe_sandbox(p);
  if (probe.state == SandboxState::kRunning || probe.state == SandboxState::kStarting) {
    if (!force) {
      say(fmt::format("sandbox {} is running: `ksbox stop {}` first, or --force", name, name));
      return 1;
    }
    if (probe.vmm) stop_sandbox(p, std::chrono::seconds(2));
  }
  stop_idle_sync(p);
  if (!force && rec) {
    if (auto ws = workspace_status(p, *rec); ws && (ws->value("ahead", 0) > 0 || ws->value("uncommitted", 0) > 0)) {
      say(fmt::format("sandbox {} holds work not synced to {} ({} commits, {} uncommitted files): "
                      "`ksbox sync {}` first, or --force to lose it",
                      name, rec->project.string(), ws->value("ahead", 0), ws->value("uncommitted", 0), name));
      return 1;
    }
  }
  // Wait for any process still holding the lock (a VMM being killed).
  std::optional<UniqueFd> lock;
  for (int i = 0; i < 250 && !(lock = try_lock(p)); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!lock) {
    if (auto vmm = live_process(p.pid_file()))
      ::kill(vmm->pid, SIGKILL);
    say(fmt::format("sandbox {} is still locked by another process", name));
    return 1;
  }
  fs::remove_all(p.dir, ec);
  if (ec) {
    say(fmt::format("cannot remove {}: {}", p.dir.string(), ec.message()));
    return 1;
  }
  say(fmt::format("sandbox {} destroyed", name));
  return 0;
}

int logs_command(const std::optional<std::string>& name_arg, bool follow, bool egress) {
  const auto found = resolve_or_say(name_arg);
  if (!found) return 1;
  const std::string& name = *found;
  const SandboxPaths p = sandbox_paths(name);
  const std::vector<fs::path> files =
      egress ? std::vector<fs::path>{p.egress_log()} : std::vector<fs::path>{p.vmm_log(), p.console_log()};
  for (const auto& f : files) {
    std::ifstream in(f);
    if (!in) continue;
    std::printf("==> %s <==\n", f.c_str());
    std::fflush(stdout);
    std::cout << in.rdbuf();
    std::cout.flush();
  }
  if (!follow) return 0;
  // Follow the console (or the egress log) until the VMM is gone.
  std::ifstream in(files.back());
  in.seekg(0, std::ios::end);
  for (;;) {
    std::string chunk(4096, '\0');
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto n = in.gcount();
    in.clear();
    if (n > 0) {
      std::fwrite(chunk.data(), 1, static_cast<size_t>(n), stdout);
      std::fflush(stdout);
      continue;
    }
    if (probe_sandbox(p).state != SandboxState::kRunning) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace ksbox::cli
