// ksbox: the host CLI. Runs commands in a ksbox microVM through its agent.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/exec_command.h"
#include "cli/exit_codes.h"
#include "cli/config_command.h"
#include "cli/doctor.h"
#include "cli/host_checks.h"
#include "cli/idle_sync.h"
#include "cli/options.h"
#include "cli/sandbox_commands.h"
#include "cli/stop.h"
#include "cli/tool_process.h"
#include "cli/vmm_process.h"
#include "cli/terminal.h"
#include "vmm/error.h"

#ifndef KSBOX_VERSION
#define KSBOX_VERSION "0.0.0-dev"
#endif

namespace {

using namespace ksbox;
using namespace ksbox::cli;

constexpr const char* kExecFooter =
    "Exit status: the command's own (0-255), or 128+N if it was killed by signal N;\n"
    "126 the agent could not run the command; 127 command not found;\n"
    "2 usage error; 255 cannot connect (after --connect-timeout), connection lost, protocol error.\n"
    "Signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the command. A second SIGINT\n"
    "within 1 s closes the connection (the agent hangs the command up) and exits 130.\n"
    "A broken stdout pipe (EPIPE) sends SIGPIPE to the command.";

constexpr const char* kAttachFooter =
    "Ctrl-] (see --detach-key) detaches: the session is closed, the agent hangs the shell up,\n"
    "ksbox exits 0. Window size changes are forwarded.\n"
    "Exit status: the shell's own (0-255), 128+N if killed by signal N; 0 after detaching;\n"
    "2 usage error or stdin is not a terminal; 126/127 the shell could not be run;\n"
    "255 cannot connect, connection lost, protocol error.";

constexpr const char* kStopFooter =
    "Exit status: 0 the VM powered off and its socket stopped accepting connections;\n"
    "1 it could not be reached, or did not stop within --timeout; 2 usage error.";

struct CommonOptions {
  std::string socket;
  uint32_t port = kAgentPort;
  double connect_timeout = 30;
};

void add_address_options(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("-s,--socket", o.socket,
                  "address a VM by its vsock Unix socket (a bare ksbox-vmm) instead of a sandbox name");
  cmd->add_option("--port", o.port, "the agent's vsock port")->capture_default_str();
}

void add_connect_timeout(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("--connect-timeout", o.connect_timeout,
                  "seconds to keep retrying while the VM or its agent is not ready")
      ->capture_default_str();
}

// Options shared by exec and attach that end up in the ExecRequest.
struct RequestOptions {
  std::vector<std::string> env;
  std::string workdir;
  std::string user;
  std::vector<std::string> argv;
};

void add_request_options(CLI::App* cmd, RequestOptions& r, bool with_env) {
  if (with_env)
    cmd->add_option("-e,--env", r.env,
                    "NAME=VALUE to set, or NAME to copy the host's value (if set); repeatable")
        ->take_last()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->allow_extra_args(false);
  cmd->add_option("-w,--workdir", r.workdir, "working directory in the guest (default: the agent's, /workspace)");
  cmd->add_option("-u,--user", r.user, "numeric UID[:GID] to run as (default: the agent's user)");
}

ExecCommand make_command(const CommonOptions& c, const RequestOptions& r) {
  ExecCommand cmd;
  cmd.address = {c.socket, c.port};
  cmd.connect_timeout = parse_seconds(c.connect_timeout, "--connect-timeout");
  cmd.request.argv = r.argv;
  cmd.request.env = resolve_env(r.env, host_env);
  cmd.request.cwd = r.workdir;
  if (!r.user.empty()) {
    const UserSpec u = parse_user(r.user);
    cmd.request.uid = u.uid;
    cmd.request.gid = u.gid;
  }
  return cmd;
}

[[noreturn]] void on_terminate() {
  restore_terminal_on_crash();
  std::fputs("ksbox: internal error: terminated\n", stderr);
  std::abort();
}


// The first "--" ends ksbox's own arguments: what follows is a command for
// the guest, never parsed here.
struct SplitArgs {
  int argc;
  bool had_dashes;
  std::vector<std::string> tail;
};
SplitArgs split_at_dashes(int argc, char** argv) {
  SplitArgs s{argc, false, {}};
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--") {
      s = {i, true, {argv + i + 1, argv + argc}};
      break;
    }
  return s;
}

int say(int status, const std::string& msg) {
  std::fprintf(stderr, "ksbox: %s\n", msg.c_str());
  return status;
}

// A sandbox name to its vsock socket; throws Error unless it runs.
std::string running_sandbox_socket(const std::optional<std::string>& name, SandboxRecord* rec) {
  const std::string n = resolve_sandbox_name(name);
  const SandboxPaths p = sandbox_paths(n);
  *rec = read_record(p);
  const SandboxProbe probe = probe_sandbox(p);
  if (probe.state != SandboxState::kRunning && probe.state != SandboxState::kStarting)
    throw Error(fmt::format("sandbox {} is {}: `ksbox run` in {} starts it", n, to_string(probe.state),
                            rec->project.string()));
  return p.vsock().string();
}

int sync_command(const std::optional<std::string>& name, bool dry_run, bool artifacts, bool json) {
  std::string n;
  SandboxRecord rec;
  try {
    running_sandbox_socket(name, &rec);
    n = rec.name;
  } catch (const Error& e) {
    return say(1, e.what());
  }
  if (rec.workspace_mode == "live") return say(2, "nothing to sync: the sandbox works on the project directly (live)");
  std::string why;
  const auto git = find_sibling_tool("ksbox-git", &why);
  if (!git) return say(1, why);
  const SandboxPaths p = sandbox_paths(n);
  std::vector<std::string> args{"sync", "--clone", p.workspace().string(), "--project", rec.project.string()};
  if (dry_run) args.push_back("--dry-run");
  if (artifacts) args.push_back("--artifacts");
  if (json) args.push_back("--json");
  if (rec.sync_mode != "manual" && !dry_run) args.push_back("--auto-commit");
  try {
    return with_guest_paused(p, [&] { return run_tool(*git, args); });
  } catch (const Error& e) {
    return say(1, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);
  const SplitArgs split = split_at_dashes(argc, argv);

  CLI::App app{"ksbox: runs AI coding agents in KVM microVM sandboxes", "ksbox"};
  app.set_version_flag("--version", "ksbox " KSBOX_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'ksbox COMMAND --help' for a command's options and exit statuses.");

  RunOptions run_o;
  double run_memory = 0;
  unsigned run_vcpus = 0;
  std::string run_path = ".";
  CLI::App* run = app.add_subcommand("run", "boot the sandbox of a git project and attach a shell, or run CMD");
  run->alias("start");
  run->add_option("path", run_path, "a directory in the project (default: the current one)");
  run->add_option("--name", run_o.name, "the sandbox's name (default: the config's, else the directory's)");
  run->add_option("--memory", run_memory, "guest memory in MiB (default: sized to the host; at least 256)");
  run->add_option("--vcpus", run_vcpus, "vCPUs (default: sized to the host)");
  run->add_flag("--fresh", run_o.fresh,
                "discard the sandbox's previous state first: its clone, its writable layer (installed packages, "
                "home directory), its logs");
  run->add_flag("--no-attach", run_o.no_attach, "boot and return; `ksbox attach` later");
  run->add_option("--network", run_o.network,
                  "off (no network device), user (rootless user-mode networking, open egress) or filtered "
                  "(only the built-in allowlist and the config's `allow` names resolve, only their addresses "
                  "on ports 80 and 443 connect; every attempt goes to `ksbox logs --egress`); default: the "
                  "config's, else user");
  run->add_option("--sync-mode", run_o.sync_mode, "manual, auto-commit or auto-idle (default: manual)");
  run->add_option("--workspace", run_o.workspace,
                  "clone (default: the guest works on a clone, `ksbox sync` brings commits back) or live "
                  "(the project directory itself, read-write)");
  run->add_option("--image", run_o.image,
                  "what the guest boots: rootfs (the Debian root disk: rootfs.ext4 beside the guest kernel, shared "
                  "read-only, under the sandbox's own writable layer), initramfs (busybox only, nothing persists), "
                  "or auto (rootfs when the image is there; the default)");
  run->add_option("--disk-size", run_o.disk_size,
                  "size of the sandbox's writable layer (sparse: a limit, not an allocation), e.g. 8G or 512M; "
                  "applies when the layer is made (first run, --fresh); default: the config's, else 8G");
  run->add_option("-e,--env", run_o.env, "NAME=VALUE or NAME (the host's value) for the command; repeatable")
      ->take_last()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  run->add_option("-p,--publish", run_o.publish,
                  "[HOSTIP:]HOSTPORT:GUESTPORT: a guest port on the host (127.0.0.1 unless HOSTIP), for this boot; "
                  "repeatable")
      ->take_last()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  run->add_option("--boot-timeout", run_o.boot_timeout_s, "seconds to wait for the guest agent")
      ->capture_default_str();
  run->footer(
      "ksbox run [PATH] [OPTIONS] [-- CMD...]: without CMD, a shell at /workspace (Ctrl-] detaches).\n"
      "Exit status: CMD's or the shell's own once it ran; before that 1 not a git repository;\n"
      "2 already running (attach, or --fresh); 3 guest image, ksbox-vmm or mkfs.ext4 missing;\n"
      "4 no usable /dev/kvm; 5 the guest did not boot (the log tails are shown); 6 bad config value or name;\n"
      "7 the root image changed under the sandbox's layer (--fresh starts over on the new one).");

  CommonOptions exec_common;
  RequestOptions exec_req;
  std::vector<std::string> exec_pos;
  bool exec_tty = false;
  CLI::App* exec = app.add_subcommand("exec", "run a command in a sandbox, with our stdin/stdout/stderr");
  add_address_options(exec, exec_common);
  exec->add_flag("-t,--tty", exec_tty,
                 "run the command on a pseudo-terminal; our terminal (if stdin is one) is raw meanwhile");
  add_request_options(exec, exec_req, true);
  add_connect_timeout(exec, exec_common);
  exec->add_option("name", exec_pos, "[NAME] -- CMD [ARG...]: the sandbox (default: the current project's)");
  exec->footer(kExecFooter);

  CommonOptions attach_common;
  RequestOptions attach_req;
  std::vector<std::string> attach_pos;
  std::string detach_key = "ctrl-]";
  CLI::App* attach = app.add_subcommand("attach", "an interactive shell in a sandbox (needs a terminal)");
  attach->alias("ssh");
  add_address_options(attach, attach_common);
  add_request_options(attach, attach_req, false);
  attach->add_option("--detach-key", detach_key, "key that detaches: ctrl-X, ^X, or none")->capture_default_str();
  add_connect_timeout(attach, attach_common);
  attach->add_option("name", attach_pos,
                     "[NAME] [-- SHELL...]: the sandbox (default: the current project's) and the shell "
                     "(default: /bin/sh -l)");
  attach->footer(kAttachFooter);

  CommonOptions stop_common;
  std::optional<std::string> stop_name;
  bool stop_sync = false;
  double stop_timeout = 30;
  CLI::App* stop = app.add_subcommand("stop", "power a sandbox off (the agent shuts the guest down)");
  add_address_options(stop, stop_common);
  stop->add_option("name", stop_name, "the sandbox (default: the current project's)");
  stop->add_flag("--sync", stop_sync, "`ksbox sync` first");
  stop->add_option("--timeout", stop_timeout, "seconds to wait for a clean power-off before killing the VM")
      ->capture_default_str();
  stop->footer(kStopFooter);

  std::optional<std::string> status_name;
  bool status_json = false;
  CLI::App* status = app.add_subcommand("status", "a sandbox's state, resources and unsynced work");
  status->add_option("name", status_name, "the sandbox (default: the current project's)");
  status->add_flag("--json", status_json, "one JSON object");
  status->footer("Exit status: 0; 1 no such sandbox. States: running, starting, stopped, crashed.");

  bool list_json = false;
  CLI::App* list = app.add_subcommand("list", "every sandbox and its state");
  list->add_flag("--json", list_json, "a JSON array");

  std::string destroy_name;
  bool destroy_force = false;
  CLI::App* destroy = app.add_subcommand("destroy", "remove a sandbox: its clone, logs and state");
  destroy->add_option("name", destroy_name, "the sandbox")->required();
  destroy->add_flag("-f,--force", destroy_force,
                    "also when it runs (killed) or holds unsynced work (lost); succeeds when it is gone already");
  destroy->footer("Exit status: 0 destroyed; 1 no such sandbox, running, or unsynced work (without --force).");

  std::optional<std::string> logs_name;
  bool logs_follow = false;
  CLI::App* logs = app.add_subcommand("logs", "a sandbox's VMM log and guest console (the agent logs there)");
  logs->add_option("name", logs_name, "the sandbox (default: the current project's)");
  logs->add_flag("-f,--follow", logs_follow, "keep printing the console until the sandbox stops");
  bool logs_egress = false;
  logs->add_flag("--egress", logs_egress,
                 "the egress log instead (filtered network: one JSON line per allowed or denied lookup and "
                 "connection)");

  std::optional<std::string> sync_name;
  bool sync_dry = false, sync_artifacts = false, sync_json = false;
  CLI::App* sync = app.add_subcommand("sync", "bring the sandbox's commits into the project (fast-forward only)");
  sync->add_option("name", sync_name, "the sandbox (default: the current project's)");
  sync->add_flag("--dry-run", sync_dry, "show the commits and diffstat; change nothing");
  sync->add_flag("--artifacts", sync_artifacts, "also copy dist/ build/ target/ .next/ out/");
  sync->add_flag("--json", sync_json, "one JSON object");
  sync->footer(
      "Exit status: 0 synced; 1 no such sandbox, or not running; 2 nothing to sync;\n"
      "3 diverged or conflict: the project is left untouched, the commands to finish by hand are printed.");

  bool doctor_json = false;
  CLI::App* doctor = app.add_subcommand("doctor", "check KVM, permissions, the guest image and dependencies");
  doctor->add_flag("--json", doctor_json, "a JSON array");
  doctor->footer("Exit status: 0 everything needed is there; 1 something failed (each line says the fix).");

  bool init_force = false;
  std::string init_name;
  CLI::App* init = app.add_subcommand("init", "write the project's .ksbox.json with the defaults");
  init->add_flag("--force", init_force, "overwrite an existing one");
  init->add_option("--name", init_name, "the sandbox name to write");

  bool config_json = false;
  std::string config_path = ".";
  CLI::App* config = app.add_subcommand("config", "print the project's resolved config");
  config->add_option("path", config_path, "a directory in the project (default: the current one)");
  config->add_flag("--json", config_json, "as JSON");

  std::string idle_name;
  CLI::App* idle_sync = app.add_subcommand(kIdleSyncCommand, "the auto-idle watcher (started by ksbox run)");
  idle_sync->group("");  // internal: not in --help
  idle_sync->add_option("name", idle_name)->required();

  try {
    app.parse(split.argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    if (dynamic_cast<const CLI::ExtrasError*>(&e) && (*exec || *attach))
      std::fputs("ksbox: put the command after `--` when it has options of its own: "
                 "ksbox exec [NAME] [OPTIONS] -- CMD [ARG...]\n",
                 stderr);
    return kExitUsage;
  }
  const bool takes_tail = *run || *exec || *attach;
  if (split.had_dashes && !takes_tail) return say(kExitUsage, "`--` is only for run, exec and attach");

  try {
    if (*run) {
      run_o.path = run_path;
      if (run_memory > 0) run_o.memory_mib = static_cast<uint64_t>(run_memory);
      if (run_vcpus > 0) run_o.vcpus = run_vcpus;
      run_o.command = split.tail;
      return run_sandbox(run_o);
    }
    if (*status) return status_command(status_name, status_json);
    if (*list) return list_command(list_json);
    if (*destroy) return destroy_command(destroy_name, destroy_force);
    if (*logs) return logs_command(logs_name, logs_follow, logs_egress);
    if (*sync) return sync_command(sync_name, sync_dry, sync_artifacts, sync_json);
    if (*doctor) return run_doctor_command(doctor_json);
    if (*idle_sync) return idle_sync_main(idle_name);
    if (*init || *config) {
      const auto root = find_git_root(*init ? "." : config_path);
      if (!root) return say(1, "not in a git repository");
      if (*init) return run_init_command(*root, init_force, init_name.empty() ? std::nullopt : std::optional(init_name));
      RunOptions o;
      o.path = *root;
      return run_config_command(resolve_config(*root, o), config_json);
    }
    if (*stop && stop_common.socket.empty()) return stop_command(stop_name, stop_sync, stop_timeout);
  } catch (const Error& e) {
    return say(1, e.what());
  }

  ExecCommand cmd;
  std::optional<SandboxRecord> rec;
  try {
    CommonOptions& common = *exec ? exec_common : *attach ? attach_common : stop_common;
    std::vector<std::string>& pos = *exec ? exec_pos : attach_pos;
    std::optional<std::string> name;
    if (*stop) {
      if (stop_name) return say(kExitUsage, "give a sandbox NAME or --socket, not both");
    } else if (!common.socket.empty()) {
      // A bare VM: positionals are the command (or the shell).
      if (split.had_dashes && !pos.empty()) return say(kExitUsage, "with --socket, the command goes after --");
      if (split.had_dashes) pos = split.tail;
    } else {
      // By sandbox: [NAME] -- CMD. Without `--`, exec's words are the command.
      if (*attach || split.had_dashes) {
        if (pos.size() > 1)
          return say(kExitUsage, "only a sandbox NAME goes before `--`: ksbox exec [NAME] -- CMD [ARG...]");
        if (!pos.empty()) name = pos[0];
        pos = split.tail;
      }
      SandboxRecord r;
      try {
        common.socket = running_sandbox_socket(name, &r);
      } catch (const Error& e) {
        return say(kExitConnection, e.what());  // like any VM that cannot be reached
      }
      rec = r;
    }
    if (*exec) {
      if (exec_pos.empty()) return say(kExitUsage, "no command: ksbox exec [NAME] -- CMD [ARG...]");
      exec_req.argv = exec_pos;
      cmd = make_command(exec_common, exec_req);
      if (rec) {
        cmd.request.env = sandbox_exec_env(*rec, exec_req.env);
        if (exec_req.user.empty()) std::tie(cmd.request.uid, cmd.request.gid) = std::pair(kSandboxUid, kSandboxGid);
      }
      cmd.tty = exec_tty;
    } else if (*attach) {
      if (!::isatty(STDIN_FILENO)) {
        std::fputs("ksbox: attach needs a terminal; use `ksbox exec` for scripts\n", stderr);
        return kExitUsage;
      }
      attach_req.argv = attach_pos;
      if (attach_req.argv.empty()) attach_req.argv = {"/bin/sh", "-l"};
      cmd = make_command(attach_common, attach_req);
      if (rec) {
        cmd.request.env = sandbox_exec_env(*rec, {});
        if (attach_req.user.empty()) std::tie(cmd.request.uid, cmd.request.gid) = std::pair(kSandboxUid, kSandboxGid);
      }
      cmd.tty = true;
      cmd.detach_key = parse_detach_key(detach_key);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "ksbox: %s\n", e.what());
    return kExitUsage;
  }

  try {
    if (*stop) {
      try {
        stop_vm({{stop_common.socket, stop_common.port}, parse_seconds(stop_timeout, "--timeout")});
      } catch (const Error& e) {
        std::fprintf(stderr, "ksbox: %s\n", e.what());
        return kExitFailure;
      }
      return kExitOk;
    }
    return run_exec_command(std::move(cmd));
  } catch (const Error& e) {
    std::fprintf(stderr, "ksbox: error: %s\n", e.what());
    return kExitConnection;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ksbox: internal error: %s\n", e.what());
    return kExitConnection;
  }
}
