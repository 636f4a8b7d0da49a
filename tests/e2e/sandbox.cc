#include "tests/e2e/sandbox.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/e2e/guest.h"

namespace ksbox::test {
namespace {

std::string make_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/ksbox-e2e-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string cli_path() { return KSBOX_CLI; }

ProcessResult run_ksbox(std::vector<std::string> args, std::chrono::seconds timeout) {
  args.insert(args.begin(), cli_path());
  ProcessOptions o;
  o.timeout = timeout;
  return run_process(args, o);
}

Sandbox::Sandbox(const SandboxOptions& opts) : dir_(make_temp_dir()) {
  socket_ = dir_ + "/vsock.sock";
  console_ = dir_ + "/console.log";
  std::vector<std::string> argv = {vmm_path(),
                                   "--kernel", guest_file("vmlinux"),
                                   "--initrd", guest_file(opts.initramfs),
                                   "--cmdline", opts.cmdline.empty() ? "quiet" : "quiet " + opts.cmdline,
                                   "--vcpus", std::to_string(opts.vcpus),
                                   "--memory", std::to_string(opts.memory_mib),
                                   "--vsock", socket_};
  if (opts.workspace) {
    std::filesystem::create_directory(workspace());
    argv.push_back("--share");
    argv.push_back("workspace=" + workspace() + (opts.workspace_read_only ? ":ro" : ""));
  }
  argv.insert(argv.end(), opts.vmm_args.begin(), opts.vmm_args.end());
  if (opts.fd_limit) {
    const std::string n = std::to_string(opts.fd_limit);
    argv.insert(argv.begin(),
                {"/usr/bin/setpriv", "--bounding-set", "-sys_resource", "/usr/bin/prlimit", "--nofile=" + n + ":" + n, "--"});
  }
  vmm_ = std::make_unique<BackgroundProcess>(argv, console_);
}

Sandbox::~Sandbox() {
  vmm_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::vector<std::string> Sandbox::exec_argv(const std::vector<std::string>& cmd,
                                            const std::vector<std::string>& options) const {
  // Generous: under nested emulation on a loaded machine the guest may take
  // many seconds to boot, and the CLI's connect retries are how tests wait.
  std::vector<std::string> argv = {cli_path(), "exec", "--socket", socket_, "--connect-timeout", "120"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

ProcessResult Sandbox::exec(const std::vector<std::string>& cmd, const std::vector<std::string>& options,
                            const ProcessOptions& popts) const {
  return run_process(exec_argv(cmd, options), popts);
}

ProcessResult Sandbox::host_sh(const std::string& script, const ProcessOptions& popts) const {
  const std::string prefix =
      "KSBOX=" + shell_quote(cli_path() + " exec --connect-timeout 120 --socket " + socket_) + "; KSBOX_CLI=" + shell_quote(cli_path()) +
      "; SOCK=" + shell_quote(socket_) + "; cd " + shell_quote(dir_) + "; ";
  return run_process({"/bin/bash", "-c", prefix + script}, popts);
}

std::optional<int> Sandbox::stop(std::chrono::seconds timeout) {
  ProcessOptions popts;
  popts.timeout = timeout;
  run_process({cli_path(), "stop", "--socket", socket_}, popts);
  return vmm_->wait_for(timeout);
}

std::string Sandbox::console() const {
  std::ifstream f(console_, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Sandbox::describe(const ProcessResult& r) const {
  std::string c = console();
  if (c.size() > 3000) c = "..." + c.substr(c.size() - 3000);
  return ksbox::test::describe(r) + "\n--- guest console ---\n" + c;
}

}  // namespace ksbox::test
