// ksbox-vmm: one microVM per process.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "devices/net/dns_forwarder.h"
#include "vmm/cmdline.h"
#include "vmm/error.h"
#include "vmm/exit_status.h"
#include "vmm/fd_limit.h"
#include "vmm/lock_fd.h"
#include "vmm/pid_file.h"
#include "vmm/machine.h"

namespace {

// A repeatable option whose every value `parse` turns into one entry of `out`
// (parse errors become usage errors).
template <typename T, typename Parse>
CLI::Option* add_repeatable(CLI::App& app, const std::string& name, std::vector<T>& out, Parse parse,
                            const std::string& help) {
  return app
      .add_option_function<std::vector<std::string>>(
          name,
          [&out, parse, name](const std::vector<std::string>& args) {
            for (const auto& a : args) {
              try {
                out.push_back(parse(a));
              } catch (const ksbox::Error& e) {
                throw CLI::ValidationError(name, e.what());
              }
            }
          },
          help)
      ->allow_extra_args(false);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ksbox;
  MachineConfig cfg;
  CLI::App app{"ksbox-vmm: runs one KVM microVM that boots a Linux kernel", "ksbox-vmm"};
  app.add_option("--kernel", cfg.kernel, "ELF vmlinux or bzImage to boot")->required();
  app.add_option("--initrd", cfg.initrd, "initramfs image");
  app.add_option("--cmdline", cfg.cmdline,
                 fmt::format("kernel command line, appended to '{}' (device arguments are added by the VMM)",
                             kDefaultCmdline));
  app.add_option("--vcpus", cfg.vcpus, "number of vCPUs")->capture_default_str();
  app.add_option("--memory", cfg.memory_mib, "guest memory in MiB (a limit: pages are allocated on use)")
      ->capture_default_str();
  app.add_option("--console", cfg.console, "where the serial console goes: '-' for stdout, or a log file")
      ->capture_default_str();
  app.add_option("--vsock", cfg.vsock_path,
                 "Unix socket for the guest's vsock: host clients connect and send 'CONNECT <port>\\n'; "
                 "guest connections to host port P go to PATH_P")
      ->type_name("PATH");
  app.add_option("--cid", cfg.guest_cid, "the guest's vsock context ID (3 .. 4294967294)")->capture_default_str();
  add_repeatable(app, "--share", cfg.shares, parse_share,
                 "share the host directory HOSTDIR with the guest over virtio-fs under TAG (1-36 printable bytes; "
                 "the guest mounts it with 'mount -t virtiofs TAG DIR', and ksbox-agent mounts the tag 'workspace' "
                 "at /workspace); ':ro' makes it read-only, enforced by the VMM; ',cache=POLICY' overrides "
                 "--share-cache for this share. Repeatable, at most 4")
      ->type_name("TAG=HOSTDIR[:ro][,cache=POLICY]");
  app.add_option("--share-cache", cfg.share_cache,
                 "what the guest may cache of the shares: 'auto' (names, absent ones included, and attributes "
                 "for 1 s, file pages while open: host edits show up), 'always' (kept until the guest drops them, and the guest's "
                 "writeback cache gathers small writes: only the guest edits), 'worktree' (for a git clone "
                 "whose .git the host writes: as 'always' without writeback, and absent names are "
                 "remembered too, except inside .git directories, which are 'auto' but ask for absent names "
                 "every time, keep listings, checked against the directory's mtime, and keep file pages "
                 "until the file's size or inode changes), 'never' (every access asks the host; no shared "
                 "mmap)")
      ->check(CLI::IsMember(std::vector<std::string>(kShareCachePolicies.begin(), kShareCachePolicies.end())))
      ->capture_default_str();
  app.add_option("--fs-io", cfg.fs_io,
                 "file I/O engine of the shares: 'auto' (io_uring when the host allows it, else sync), "
                 "'io_uring', 'sync'")
      ->check(CLI::IsMember({"auto", "io_uring", "sync"}))
      ->capture_default_str();
  app.add_option("--fs-poll-us", cfg.fs_poll_us,
                 "microseconds each share's device thread keeps watching for the guest's next request after one, "
                 "so that the guest need not notify it, and (with ksbox's guest kernel, as virtiofs.poll_us) the "
                 "guest's sender of a request watches for its reply, so that no interrupt need wake it: VM exits "
                 "saved, at the cost of CPU while the guest works on the share; 0 turns both off")
      ->check(CLI::Range(0u, kMaxFsPollUs))
      ->capture_default_str();
  add_repeatable(app, "--disk", cfg.disks, parse_disk,
                 "give the guest the raw image file PATH over virtio-blk (/dev/vda, /dev/vdb, ... in order); ':ro' "
                 "makes it read-only (the guest's writes fail, the file is opened read-only); 'serial=ID' (up to 20 "
                 "printable ASCII bytes) shows in the guest's /sys/block/vdX/serial. The image is locked against "
                 "other ksbox-vmm processes. Repeatable, at most 4")
      ->type_name("PATH[:ro][,serial=ID]");
  app.add_option("--blk-io", cfg.blk_io,
                 "I/O engine of the disks: 'auto' (io_uring when the host allows it, else sync), 'io_uring' "
                 "(requests run asynchronously, several at once), 'sync' (one blocking call at a time)")
      ->check(CLI::IsMember({"auto", "io_uring", "sync"}))
      ->capture_default_str();
  app.add_option("--control", cfg.control_path,
                 "Unix socket for the ksbox CLI: JSON requests {\"cmd\":\"status\"}, {\"cmd\":\"stop\"}, "
                 "{\"cmd\":\"pause\"}, {\"cmd\":\"resume\"}, {\"cmd\":\"balloon\",\"target_mib\":N}, "
                 "{\"cmd\":\"fs\"} (the shares' request counts), {\"cmd\":\"net\"} (the network's frame counts) "
                 "and {\"cmd\":\"devices\"} (each virtio device's register accesses that exited)")
      ->type_name("PATH");
  app.add_option_function<std::string>(
         "--balloon", [&cfg](const std::string& v) { cfg.balloon = v == "on"; },
         "virtio-balloon: 'on' (default) gives the memory the guest frees back to the host (free page "
         "reporting; --memory is a limit, not a reservation) and lets the control socket set a balloon "
         "target; the guest deflates it rather than run out of memory. 'off': no balloon device")
      ->check(CLI::IsMember({"on", "off"}))
      ->default_str("on");
  std::string pid_file;
  app.add_option("--pid-file", pid_file,
                 "write {\"pid\",\"starttime\"} here at start; removed when the VMM ends, unless the guest "
                 "crashed")
      ->type_name("PATH");
  app.add_option("--name", cfg.name, "the sandbox name the control socket reports");
  int lock_fd = -1;
  app.add_option("--lock-fd", lock_fd,
                 "an inherited fd of the sandbox's lock file, flock()ed by the caller: the VMM holds the lock "
                 "until it exits, so that no second VMM can run for the same sandbox")
      ->check(CLI::Range(3, 1 << 20));
  app.add_option("--network", cfg.network.mode,
                 "the guest's network: 'off' (no network device), 'user' (virtio-net on a user-mode network "
                 "in the VMM, no root needed: the guest is 10.0.2.15/24, gateway 10.0.2.2, which also reaches "
                 "the host's 127.0.0.1, DNS 10.0.2.3; ksbox-agent configures eth0 and /etc/resolv.conf) or "
                 "'filtered' (the same network, but the guest may resolve only allowed names (--allow), connect "
                 "only to addresses those lookups returned and only on allowed ports (--allow-port); denied "
                 "lookups get NXDOMAIN, denied connections a reset, everything else is dropped; the host's "
                 "loopback is not reachable)")
      ->check(CLI::IsMember({"off", "user", "filtered"}))
      ->capture_default_str();
  add_repeatable(app, "--allow", cfg.network.allow, parse_allow_name,
                 "filtered network: also allow NAME and every name under it (github.com covers "
                 "api.github.com). Adds to the built-in list of the agents' APIs, package registries and git "
                 "hosts (README.md). Repeatable")
      ->type_name("NAME");
  app.add_flag_function("--no-default-allow", [&cfg](int64_t) { cfg.network.default_allow = false; },
               "filtered network: do not start from the built-in allowlist; only --allow names resolve");
  app.add_option("--allow-port", cfg.network.allow_ports,
                 "filtered network: a TCP port the guest may connect to (default: 80 and 443; giving any "
                 "replaces both). Repeatable")
      ->type_name("PORT")
      ->check(CLI::Range(1, 65535))
      ->allow_extra_args(false);
  app.add_option("--egress-log", cfg.network.egress_log,
                 "filtered network: append one JSON line per allowed or denied attempt to PATH (rate-limited: "
                 "a burst of 200 lines, then 20 a second, the rest counted in a \"suppressed\" line; beyond "
                 "32 MiB the file becomes PATH.1)")
      ->type_name("PATH");
  app.add_option("--dns-upstream", cfg.network.dns_upstream,
                 "filtered network: the resolver that allowed lookups are sent to (default: the first "
                 "nameserver of the host's /etc/resolv.conf)")
      ->type_name("IP[:PORT]")
      ->check([](const std::string& v) {
        try {
          devices::net::parse_dns_upstream(v);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      });
  app.add_flag("--allow-host-loopback", cfg.network.allow_host_loopback,
               "filtered network: let the gateway address (10.0.2.2) reach the host's 127.0.0.1 on the allowed "
               "ports, as in the user network");
  add_repeatable(app, "--publish", cfg.network.publish, parse_publish,
                 "forward TCP connections to HOSTIP:HOSTPORT on the host (HOSTIP defaults to 127.0.0.1) to "
                 "GUESTPORT in the guest; needs --network user (not filtered). Repeatable")
      ->type_name("[HOSTIP:]HOSTPORT:GUESTPORT")
      ->allow_extra_args(false);
  app.footer(
      "Exit status: 0 the guest rebooted (use reboot=k, the default); 1 setup error; 2 usage error;\n"
      "3 the guest crashed (kernel panic, triple fault, KVM error) - the reason is on stderr;\n"
      "128+N stopped by signal N.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  if (lock_fd >= 0) {
    try {
      hold_lock(lock_fd);
    } catch (const Error& e) {
      std::fprintf(stderr, "ksbox-vmm: error: %s\n", e.what());
      return kExitSetupError;
    }
  }
  // Every vsock stream is a host socket: allow as many as the hard limit does.
  raise_fd_limit();
  try {
    std::optional<PidFile> pid;
    if (!pid_file.empty()) pid.emplace(pid_file);
    Machine machine(cfg);
    const ExitStatus st = machine.run();
    if (pid && st.code == kExitGuestCrash) pid->keep();
    if (st.code != kExitGuestReset) std::fprintf(stderr, "ksbox-vmm: %s\n", st.reason.c_str());
    return st.code;
  } catch (const Error& e) {
    std::fprintf(stderr, "ksbox-vmm: error: %s\n", e.what());
    return kExitSetupError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ksbox-vmm: internal error: %s\n", e.what());
    return kExitSetupError;
  }
}
