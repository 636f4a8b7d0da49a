// Exec round trip: `ksbox exec -- true` (CLI → VMM vsock socket → agent →
// fork/exec → exit status back) against `dbclient … true`, an SSH exec into
// dropbear in the same guest kernel and initramfs under QEMU -M microvm with
// user networking, in the same place (acpi=off: QEMU then announces its
// virtio-mmio devices on the command line, as ksbox-vmm does). Each sample is one client process, as a
// script or an agent harness would run it. Prints p50 and p99 and their ratios.
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tests/e2e/guest.h"
#include "tests/e2e/sandbox.h"

namespace {

using Clock = std::chrono::steady_clock;
using ksbox::test::ProcessOptions;
using ksbox::test::run_process;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

// Runs `argv` `runs` times; the wall time of each successful run in ms, or
// nullopt (after printing why) when one fails.
std::optional<std::vector<double>> time_runs(const std::vector<std::string>& argv, unsigned runs) {
  std::vector<double> ms;
  ProcessOptions popts;
  popts.timeout = std::chrono::seconds(60);
  for (unsigned i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    auto r = run_process(argv, popts);
    const double t = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (r.exit_code != 0) {
      fmt::print(stderr, "exec benchmark: {} failed (exit {}):\n{}{}\n", argv[0], r.exit_code, r.out, r.err);
      return std::nullopt;
    }
    ms.push_back(t);
  }
  return ms;
}

// Retries `argv` until it succeeds (the guest is booting) or `timeout` passes.
bool wait_until_ok(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  ProcessOptions popts;
  popts.timeout = std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    if (run_process(argv, popts).exit_code == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

uint16_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("cannot find a free TCP port");
  ::close(fd);
  return ntohs(a.sin_port);
}

void print_result(const char* metric, double ksbox_ms, double peer_ms) {
  fmt::print("RESULT {} ksbox={:.1f}ms peer=dropbear-ssh-qemu:{:.1f}ms ratio={:.3f}\n", metric, ksbox_ms, peer_ms,
             ksbox_ms / peer_ms);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned runs = 30;
  std::string qemu = "/usr/bin/qemu-system-x86_64";
  CLI::App app{"Exec round trip: ksbox exec vs SSH (dropbear) under QEMU (needs /dev/kvm; see benchmarks/exec/run)"};
  app.add_option("--runs", runs, "timed execs per side")->capture_default_str()->check(CLI::Range(5u, 10000u));
  app.add_option("--qemu", qemu, "QEMU binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    fmt::print(stderr, "exec benchmark: no usable /dev/kvm; run it through benchmarks/exec/run\n");
    return 1;
  }

  // ksbox: the VMM with the agent; warm up with a few execs first.
  std::vector<double> ksbox_ms;
  {
    ksbox::test::Sandbox sb;
    const auto exec_true = sb.exec_argv({"true"});
    if (!wait_until_ok(exec_true, std::chrono::seconds(120))) {
      fmt::print(stderr, "exec benchmark: ksbox exec never succeeded\n{}\n", sb.console());
      return 1;
    }
    auto ms = time_runs(exec_true, runs);
    if (!ms) return 1;
    ksbox_ms = *ms;
    sb.stop();
  }

  // Peer: dropbear in the same kernel + initramfs, QEMU microvm, user net.
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/ksbox-bench-exec-XXXXXX";
  if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
  ::setenv("HOME", dir.c_str(), 1);  // dbclient's ~/.ssh stays in the scratch directory
  auto mk = run_process({"/bin/bash", KSBOX_SSH_INITRAMFS_SCRIPT, ksbox::test::guest_file("initramfs.cpio.gz"), dir});
  if (mk.exit_code != 0) {
    fmt::print(stderr, "exec benchmark: cannot build the SSH initramfs:\n{}{}\n", mk.out, mk.err);
    return 1;
  }
  const uint16_t port = free_tcp_port();
  const std::string cmdline =
      "console=ttyS0 reboot=k panic=1 quiet ksbox_cmd=\"ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && "
      "ip route add default via 10.0.2.2 && exec dropbear -F -E -s -r /etc/dropbear/host_key -p 22\"";
  ksbox::test::BackgroundProcess vm(
      {qemu, "-M", "microvm,x-option-roms=off,rtc=off,acpi=off", "-accel", "kvm", "-cpu", "host", "-m", "512", "-smp", "2",
       "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel",
       ksbox::test::guest_file("vmlinux"), "-initrd", dir + "/initramfs-ssh.cpio.gz", "-append", cmdline,
       "-netdev", fmt::format("user,id=n0,hostfwd=tcp:127.0.0.1:{}-:22", port), "-device",
       "virtio-net-device,netdev=n0", "-device", "virtio-rng-device"},
      dir + "/qemu.log");
  const std::vector<std::string> ssh_true = {"/usr/bin/dbclient", "-y",  "-y", "-i", dir + "/client_key", "-p",
                                             std::to_string(port), "root@127.0.0.1", "true"};
  if (!wait_until_ok(ssh_true, std::chrono::seconds(180))) {
    fmt::print(stderr, "exec benchmark: SSH into the QEMU guest never succeeded (log in {})\n", dir + "/qemu.log");
    return 1;
  }
  auto ssh_ms = time_runs(ssh_true, runs);
  vm.kill(SIGKILL);
  vm.wait_for(std::chrono::seconds(10));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ssh_ms) return 1;

  for (unsigned i = 0; i < runs; ++i)
    fmt::print(stderr, "run {:3}: ksbox exec {:8.1f} ms   ssh exec {:8.1f} ms\n", i + 1, ksbox_ms[i], (*ssh_ms)[i]);
  fmt::print("# {} runs per side, one client process per run, {}\n", runs,
             std::getenv("KSBOX_IN_L1") ? "inside the nested L1 (QEMU TCG + nested SVM)" : "native KVM");
  print_result("exec_true_p50", percentile(ksbox_ms, 50), percentile(*ssh_ms, 50));
  print_result("exec_true_p99", percentile(ksbox_ms, 99), percentile(*ssh_ms, 99));
  return 0;
}
