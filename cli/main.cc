// ksbox: the host CLI. Runs commands in a ksbox microVM through its agent.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/exec_command.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cli/stop.h"
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
  cmd->add_option("-s,--socket", o.socket, "the VM's vsock Unix socket (from ksbox-vmm)")->required();
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

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);

  CLI::App app{"ksbox: runs commands in a ksbox microVM", "ksbox"};
  app.set_version_flag("--version", "ksbox " KSBOX_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'ksbox COMMAND --help' for a command's options and exit statuses.");

  CommonOptions exec_common;
  RequestOptions exec_req;
  bool exec_tty = false;
  CLI::App* exec = app.add_subcommand("exec", "run a command in the VM, with our stdin/stdout/stderr");
  add_address_options(exec, exec_common);
  exec->add_flag("-t,--tty", exec_tty,
                 "run the command on a pseudo-terminal; our terminal (if stdin is one) is raw meanwhile");
  add_request_options(exec, exec_req, true);
  add_connect_timeout(exec, exec_common);
  exec->add_option("command", exec_req.argv, "the command and its arguments (put them after --)")->required();
  exec->footer(kExecFooter);

  CommonOptions attach_common;
  RequestOptions attach_req;
  std::string detach_key = "ctrl-]";
  CLI::App* attach = app.add_subcommand("attach", "an interactive shell in the VM (needs a terminal)");
  add_address_options(attach, attach_common);
  add_request_options(attach, attach_req, false);
  attach->add_option("--detach-key", detach_key, "key that detaches: ctrl-X, ^X, or none")->capture_default_str();
  add_connect_timeout(attach, attach_common);
  attach->add_option("command", attach_req.argv, "the shell to run (default: /bin/sh -l)");
  attach->footer(kAttachFooter);

  CommonOptions stop_common;
  double stop_timeout = 30;
  CLI::App* stop = app.add_subcommand("stop", "power the VM off through its agent and wait until it is gone");
  add_address_options(stop, stop_common);
  stop->add_option("--timeout", stop_timeout, "seconds to wait for the VM to stop")->capture_default_str();
  stop->footer(kStopFooter);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    if (dynamic_cast<const CLI::ExtrasError*>(&e) && (*exec || *attach))
      std::fputs("ksbox: put the command after `--` when it has options of its own: "
                 "ksbox exec [OPTIONS] -- CMD [ARG...]\n",
                 stderr);
    return kExitUsage;
  }

  ExecCommand cmd;
  try {
    if (*exec) {
      cmd = make_command(exec_common, exec_req);
      cmd.tty = exec_tty;
    } else if (*attach) {
      if (!::isatty(STDIN_FILENO)) {
        std::fputs("ksbox: attach needs a terminal; use `ksbox exec` for scripts\n", stderr);
        return kExitUsage;
      }
      if (attach_req.argv.empty()) attach_req.argv = {"/bin/sh", "-l"};
      cmd = make_command(attach_common, attach_req);
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
