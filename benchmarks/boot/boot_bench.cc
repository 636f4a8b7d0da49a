// Boot benchmark: time from starting the VMM process to the guest init's
// first line ("ksbox-init: up"), ksbox-vmm against QEMU -M microvm booting the
// same kernel and initramfs in the same place. Runs alternate between the two.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tests/e2e/process.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kMarker = "ksbox-init: up";
constexpr const char* kCmdline = "console=ttyS0 reboot=k panic=1 quiet";

// Milliseconds to the marker, or nullopt (with the output) if it never came.
std::optional<double> time_to_marker(const std::vector<std::string>& argv) {
  ksbox::test::ProcessOptions opts;
  opts.timeout = std::chrono::seconds(120);
  opts.signal = SIGKILL;
  std::optional<Clock::time_point> seen;
  opts.send_signal_when = [&](const std::string& out) {
    if (out.find(kMarker) == std::string::npos) return false;
    seen = Clock::now();
    return true;
  };
  const auto start = Clock::now();
  auto r = ksbox::test::run_process(argv, opts);
  if (!seen) {
    fmt::print(stderr, "no '{}' from {} (exit {}):\n{}\n{}\n", kMarker, argv[0], r.exit_code, r.out, r.err);
    return std::nullopt;
  }
  return std::chrono::duration<double, std::milli>(*seen - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string vmm = KSBOX_VMM, guest = KSBOX_GUEST_DIR, qemu = "/usr/bin/qemu-system-x86_64";
  std::string kernel = "vmlinux";
  unsigned runs = 10;
  CLI::App app{"Boot time to init: ksbox-vmm vs QEMU microvm (needs /dev/kvm; see benchmarks/boot/run)"};
  app.add_option("--runs", runs, "runs of each")->capture_default_str()->check(CLI::Range(1u, 1000u));
  app.add_option("--kernel", kernel, "guest kernel file in the guest dir")->capture_default_str();
  app.add_option("--guest-dir", guest, "directory with the guest image")->capture_default_str();
  app.add_option("--qemu", qemu, "QEMU binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    fmt::print(stderr, "boot benchmark: no usable /dev/kvm; run it through benchmarks/boot/run\n");
    return 1;
  }
  const std::string k = guest + "/" + kernel, initrd = guest + "/initramfs.cpio.gz";
  const std::vector<std::string> ksbox_argv = {vmm, "--kernel", k, "--initrd", initrd, "--memory", "256",
                                               "--vcpus", "1", "--cmdline", "quiet"};
  const std::vector<std::string> qemu_argv = {
      qemu, "-M", "microvm,x-option-roms=off,rtc=off", "-accel", "kvm", "-cpu", "host", "-m", "256",
      "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
      "-kernel", k, "-initrd", initrd, "-append", kCmdline};

  std::vector<double> ksbox_ms, qemu_ms;
  for (unsigned i = 0; i < runs; ++i) {
    auto a = time_to_marker(ksbox_argv);
    auto b = time_to_marker(qemu_argv);
    if (!a || !b) return 1;
    ksbox_ms.push_back(*a);
    qemu_ms.push_back(*b);
    fmt::print(stderr, "run {:2}: ksbox-vmm {:8.1f} ms   qemu-microvm {:8.1f} ms\n", i + 1, *a, *b);
  }
  const double ks = median(ksbox_ms), qm = median(qemu_ms);
  const char* where = std::getenv("KSBOX_IN_L1") ? "nested L1 (QEMU TCG with SVM)" : "native KVM";
  fmt::print("boot_to_init: medians of {} runs each, kernel {}, in {}\n", runs, kernel, where);
  fmt::print("RESULT boot_to_init ksbox={:.1f}ms peer=qemu-microvm:{:.1f}ms ratio={:.2f}\n", ks, qm, ks / qm);
  return 0;
}
