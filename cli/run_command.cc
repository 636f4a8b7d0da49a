// `ksbox run`: find the project, set up (or reuse) its sandbox, boot the VMM
// detached, wait for the agent, then attach a shell or run the command.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

#include "cli/config.h"
#include "cli/exec_command.h"
#include "cli/hooks.h"
#include "cli/idle_sync.h"
#include "cli/host_checks.h"
#include "cli/options.h"
#include "cli/root_disk.h"
#include "cli/sandbox_commands.h"
#include "cli/tool_process.h"
#include "cli/vmm_process.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

void say(const std::string& msg) { std::fprintf(stderr, "ksbox: %s\n", msg.c_str()); }

}  // namespace

SandboxConfig resolve_config(const fs::path& root, const RunOptions& o) {
  SandboxConfig c = load_project_config(root).value_or(SandboxConfig{});
  if (!o.name.empty()) c.name = o.name;
  if (c.name.empty()) c.name = default_name_for(root);
  validate_name(c.name);
  if (o.memory_mib) c.memory_mib = o.memory_mib;
  if (o.vcpus) c.vcpus = o.vcpus;
  if (!o.network.empty()) {
    const auto m = parse_network_mode(o.network);
    if (!m) throw ConfigError("--network: expected off, user or filtered, not '" + o.network + "'");
    c.network = *m;
  }
  if (!o.sync_mode.empty()) {
    const auto m = parse_sync_mode(o.sync_mode);
    if (!m) throw ConfigError("--sync-mode: expected manual, auto-commit or auto-idle, not '" + o.sync_mode + "'");
    c.sync_mode = *m;
  }
  if (!o.workspace.empty()) {
    const auto m = parse_workspace_mode(o.workspace);
    if (!m) throw ConfigError("--workspace: expected clone or live, not '" + o.workspace + "'");
    c.workspace = *m;
  }
  if (!o.image.empty()) {
    const auto k = parse_image_kind(o.image);
    if (!k) throw ConfigError("--image: expected auto, rootfs or initramfs, not '" + o.image + "'");
    c.image = *k;
  }
  if (!o.disk_size.empty()) {
    c.disk_size = parse_disk_size(o.disk_size);
    if (!c.disk_size || *c.disk_size < kMinDiskSize || *c.disk_size > kMaxDiskSize)
      throw ConfigError(fmt::format("--disk-size: expected a size from {} to {} such as 8G or 512M, not '{}'",
                                    format_disk_size(kMinDiskSize), format_disk_size(kMaxDiskSize), o.disk_size));
  }
  if (!o.publish.empty() && c.network != NetworkMode::kUser)
    throw ConfigError("--publish needs the user network (--network user)");
  return c;
}

namespace {

// Makes the clone the guest works in; the host repository is never shared.
void clone_workspace(const SandboxPaths& p, const fs::path& root, const SandboxConfig& c) {
  std::string why;
  const auto git = find_sibling_tool("ksbox-git", &why);
  if (!git) throw Error(why);
  std::vector<std::string> args{"clone", "--project", root.string(), "--dest", p.workspace().string()};
  if (c.git_name) args.insert(args.end(), {"--name", *c.git_name});
  if (c.git_email) args.insert(args.end(), {"--email", *c.git_email});
  say(fmt::format("cloning {} into the sandbox", root.string()));
  if (run_tool(*git, args, /*stdout_to_stderr=*/true) != 0) {
    std::error_code ec;
    fs::remove_all(p.workspace(), ec);  // half a clone would be taken for a whole one next time
    throw Error("cloning the project failed (see above)");
  }
}

// The host writes a clone only in its .git (sync commits there), so the
// guest may cache the rest; a live workspace is the host's too.
std::string workspace_cache(const SandboxRecord& rec) {
  return rec.workspace_mode == "clone" ? ",cache=worktree" : "";
}

std::vector<std::string> vmm_args(const SandboxPaths& p, const GuestImage& image, const SandboxRecord& rec,
                                  const SandboxConfig& config, const std::vector<std::string>& publish,
                                  const std::vector<std::string>& root_disk) {
  std::vector<std::string> args{
      "--kernel",  image.kernel.string(),     "--initrd",   image.initrd.string(),
      "--vcpus",   std::to_string(rec.vcpus), "--memory",   std::to_string(rec.memory_mib),
      "--console", p.console_log().string(),  "--vsock",    p.vsock().string(),
      "--control", p.control().string(),      "--pid-file", p.pid_file().string(),
      "--name",    rec.name,                  "--network",  rec.network,
      "--share",   "workspace=" + rec.workspace_dir(p).string() + workspace_cache(rec)};
  for (const auto& share : config.shares) {
    args.push_back("--share");
    args.push_back(share.tag + "=" + share_host_dir(share, rec.project).string() + (share.read_only ? ":ro" : ""));
  }
  for (const auto& port : publish) args.insert(args.end(), {"--publish", port});
  if (rec.network == "filtered") {
    for (const auto& name : config.allow) args.insert(args.end(), {"--allow", name});
    args.insert(args.end(), {"--egress-log", p.egress_log().string()});
  }
  args.insert(args.end(), root_disk.begin(), root_disk.end());
  return args;
}

int attach_or_run(const SandboxRecord& rec, const SandboxPaths& p, const RunOptions& o) {
  ExecCommand cmd;
  cmd.address = {p.vsock().string(), kAgentPort};
  cmd.request.env = sandbox_exec_env(rec, o.env);
  cmd.request.cwd = "/workspace";
  cmd.request.uid = kSandboxUid;
  cmd.request.gid = kSandboxGid;
  if (!o.command.empty()) {
    cmd.request.argv = o.command;
    return run_exec_command(std::move(cmd));
  }
  if (o.no_attach || !::isatty(STDIN_FILENO)) {
    if (!o.no_attach) say("stdin is not a terminal, so no shell is attached");
    std::printf("sandbox %s is running: `ksbox attach %s`, `ksbox exec %s -- CMD`, `ksbox stop %s`\n",
                rec.name.c_str(), rec.name.c_str(), rec.name.c_str(), rec.name.c_str());
    return 0;
  }
  cmd.request.argv = {"/bin/sh", "-l"};
  cmd.tty = true;
  cmd.detach_key = parse_detach_key("ctrl-]");
  return run_exec_command(std::move(cmd));
}

}  // namespace

int run_sandbox(const RunOptions& o) {
  const auto root = find_git_root(o.path);
  if (!root) {
    say(fmt::format("{} is not in a git repository: ksbox runs a sandbox for a git project "
                    "(`git init` makes one)",
                    o.path.string()));
    return kRunNotGitRepo;
  }
  SandboxConfig config;
  try {
    config = resolve_config(*root, o);
  } catch (const Error& e) {
    say(e.what());
    return kRunBadConfig;
  }
  const SandboxPaths p = sandbox_paths(config.name);
  fs::create_directories(p.dir);
  ::chmod(p.dir.c_str(), 0700);

  auto lock = try_lock(p);
  if (!lock && o.fresh) {
    say(fmt::format("stopping {} to start it fresh", config.name));
    stop_sandbox(p, std::chrono::seconds(20));
    lock = try_lock(p);
  }
  if (!lock) {
    say(fmt::format("sandbox {} is already running: `ksbox attach {}`, or `ksbox run --fresh` to start over",
                    config.name, config.name));
    return kRunAlreadyRunning;
  }

  std::error_code ec;
  if (fs::exists(p.record(), ec)) {
    const SandboxRecord old = read_record(p);
    if (old.project != *root) {
      say(fmt::format("the name {} belongs to the sandbox of {}; choose another with --name", config.name,
                      old.project.string()));
      return kRunBadConfig;
    }
  }
  if (fs::exists(p.pid_file(), ec))
    say(fmt::format("sandbox {} crashed last time (`ksbox logs {}`); starting it again, its files are kept",
                    config.name, config.name));
  remove_stale_runtime(p);
  if (o.fresh) {
    for (const auto& e : fs::directory_iterator(p.dir))
      if (e.path() != p.lock()) fs::remove_all(e.path());
  }

  std::string why;
  const auto image = find_guest_image(&why);
  if (!image) {
    say(why);
    return kRunNoGuestImage;
  }
  // KSBOX_KVM_DEVICE: another device node (tests, diagnosis).
  const char* kvm_dev = std::getenv("KSBOX_KVM_DEVICE");
  const KvmStatus kvm = check_kvm(kvm_dev && *kvm_dev ? kvm_dev : "/dev/kvm");
  if (!kvm.usable) {
    say(fmt::format("no usable /dev/kvm: {}\n  fix: {}", kvm.problem, kvm.fix));
    return kRunNoKvm;
  }
  const auto vmm = find_vmm(&why);
  if (!vmm) {
    say(why);
    return kRunNoGuestImage;
  }

  Resources res;
  try {
    res = resolve_resources(config, host_memory_total_mib(), host_cpu_count());
  } catch (const Error& e) {
    say(e.what());
    return kRunBadConfig;
  }
  SandboxRecord rec;
  if (fs::exists(p.record(), ec)) {
    // The sandbox keeps what it was made with; boot-time choices given on
    // this command line apply from this boot on.
    rec = read_record(p);
    if (o.memory_mib) rec.memory_mib = res.memory_mib;
    if (o.vcpus) rec.vcpus = res.vcpus;
    if (!o.network.empty()) rec.network = to_string(config.network);
    if (!o.sync_mode.empty()) rec.sync_mode = to_string(config.sync_mode);
    if (!o.workspace.empty() && o.workspace != rec.workspace_mode) {
      say(fmt::format("sandbox {} works on a {} workspace; `ksbox run --fresh --workspace {}` starts over with {}",
                      rec.name, rec.workspace_mode, o.workspace, o.workspace));
      return kRunBadConfig;
    }
  } else {
    rec = {config.name,
           *root,
           std::string(to_string(config.workspace)),
           res.memory_mib,
           res.vcpus,
           std::string(to_string(config.network)),
           std::string(to_string(config.sync_mode)),
           static_cast<int64_t>(std::time(nullptr))};
  }
  RootDiskPlan disk;
  try {
    disk = plan_root_disk(p, *image,
                          {config.image, config.disk_size.value_or(kDefaultDiskSize), config.disk_size.has_value()},
                          rec);
  } catch (const RootDiskError& e) {
    say(e.what());
    return e.exit_status();
  }
  for (const auto& note : disk.notes) say(note);
  if (rec.workspace_mode == "clone" && !fs::exists(p.workspace() / ".git", ec)) clone_workspace(p, *root, config);
  write_record(p, rec);

  const std::vector<std::string> hook_env{"KSBOX_SANDBOX=" + rec.name, "KSBOX_STATE_DIR=" + p.dir.string()};
  run_hooks("pre-up", config.hooks.pre_up, *root, hook_env);
  const pid_t pid = spawn_vmm(p, {*vmm, vmm_args(p, *image, rec, config, o.publish, disk.vmm_args)}, *lock);
  lock.reset();  // the VMM holds it now
  try {
    wait_until_ready(p, pid, std::chrono::milliseconds(static_cast<int64_t>(o.boot_timeout_s * 1000)));
  } catch (const Error& e) {
    say(e.what());
    try {
      if (probe_sandbox(p).vmm) stop_sandbox(p, std::chrono::seconds(1));
    } catch (const Error&) {
    }
    return kRunBootFailed;
  }
  if (rec.sync_mode == "auto-idle" && rec.workspace_mode == "clone") spawn_idle_sync(p, rec.name);
  run_hooks("post-up", config.hooks.post_up, *root, hook_env);
  return attach_or_run(rec, p, o);
}

}  // namespace ksbox::cli
