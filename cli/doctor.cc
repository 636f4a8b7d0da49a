#include "cli/doctor.h"

#include <linux/io_uring.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli/host_checks.h"
#include "cli/root_disk.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {
namespace {

namespace fs = std::filesystem;

// Below this the VMM fits its vsock streams and share handles into fewer fds.
constexpr rlim_t kWantedFds = 4096;

CheckResult ok(std::string check, std::string detail) {
  return {std::move(check), CheckStatus::kOk, std::move(detail), ""};
}

CheckResult problem(CheckStatus status, std::string check, std::string detail, std::string fix) {
  return {std::move(check), status, std::move(detail), std::move(fix)};
}

CheckResult check_kvm_device() {
  const KvmStatus k = check_kvm();
  if (k.usable) return ok("kvm", fmt::format("/dev/kvm usable (API {})", k.api_version));
  return problem(CheckStatus::kFail, "kvm", k.problem, k.fix);
}

CheckResult check_guest_image() {
  std::string why;
  if (const auto image = find_guest_image(&why))
    return ok("guest-image", fmt::format("{} and {}", image->kernel.string(), image->initrd.filename().string()));
  return problem(CheckStatus::kFail, "guest-image", why,
                 fmt::format("build it with ./scripts/build.sh (into build/guest/), or set KSBOX_GUEST_DIR to a "
                             "directory with {} and {}",
                             kGuestKernelFile, kGuestInitrdFile));
}

// The Debian root disk is optional: without it sandboxes still boot, from
// the initramfs alone.
CheckResult check_root_image() {
  std::string why;
  const auto image = find_guest_image(&why);
  if (!image) return problem(CheckStatus::kWarn, "root-image", "no guest image (see guest-image)", "see guest-image");
  if (!image->rootfs)
    return problem(CheckStatus::kWarn, "root-image",
                   fmt::format("no {} in {}: sandboxes boot the initramfs alone (busybox; no agent CLIs, nothing "
                               "persists)",
                               kGuestRootfsFile, image->dir.string()),
                   "build it with `cmake --build build --target guest-rootfs` (./scripts/build.sh does; needs root "
                   "or sudo, the Debian mirror and the npm registry)");
  const auto id = read_base_image_id(*image->rootfs, &why);
  if (!id)
    return problem(CheckStatus::kFail, "root-image", why,
                   "rebuild it with `cmake --build build --target guest-rootfs`");
  const auto mkfs = find_mkfs_ext4(&why);
  if (!mkfs)
    return problem(CheckStatus::kFail, "root-image",
                   fmt::format("{} is there, but {}", image->rootfs->string(), why),
                   "sudo apt-get install e2fsprogs");
  return ok("root-image", fmt::format("{} (ext4 UUID {}, {} MiB); layers made with {}", image->rootfs->string(),
                                      id->uuid, id->size >> 20, mkfs->string()));
}

CheckResult check_vmm() {
  std::string why;
  if (const auto vmm = find_vmm(&why)) return ok("ksbox-vmm", vmm->string());
  return problem(CheckStatus::kFail, "ksbox-vmm", why,
                 "build it with ./scripts/build.sh, or set KSBOX_VMM to its path");
}

CheckResult check_git_tool() {
  std::string why;
  if (const auto tool = find_sibling_tool("ksbox-git", &why)) return ok("ksbox-git", tool->string());
  return problem(CheckStatus::kFail, "ksbox-git", why,
                 "build it with ./scripts/build.sh, or install it next to ksbox");
}

// /proc/sys/kernel/io_uring_disabled: 0 allowed, 1 only for the
// io_uring_group sysctl's group, 2 disabled (Linux 6.6+; absent before).
std::string io_uring_sysctl() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  std::string v;
  in >> v;
  return v;
}

}  // namespace

CheckResult check_state_dir(const fs::path& dir) {
  // The nearest directory that exists: ksbox creates the rest.
  fs::path existing = dir;
  std::error_code ec;
  while (!fs::exists(existing, ec) && existing.has_relative_path()) existing = existing.parent_path();
  struct stat st{};
  if (::stat(existing.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
    return problem(CheckStatus::kFail, "state-dir", fmt::format("{} is not a directory", existing.string()),
                   "set XDG_STATE_HOME to a writable directory");
  if (::access(existing.c_str(), W_OK | X_OK) < 0)
    return problem(CheckStatus::kFail, "state-dir",
                   existing == dir ? fmt::format("{} is not writable", dir.string())
                                   : fmt::format("cannot create {}: {} is not writable", dir.string(),
                                                 existing.string()),
                   "fix its ownership, or set XDG_STATE_HOME to a writable directory");
  return ok("state-dir", existing == dir ? fmt::format("{} writable", dir.string())
                                         : fmt::format("{} (will be created)", dir.string()));
}

CheckResult check_fd_limit(const rlimit& limit) {
  // ksbox-vmm raises its soft limit to the hard one: the hard one counts.
  if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= kWantedFds)
    return ok("fd-limit", limit.rlim_max == RLIM_INFINITY ? "RLIMIT_NOFILE hard limit unlimited"
                                                          : fmt::format("RLIMIT_NOFILE hard limit {}", limit.rlim_max));
  return problem(CheckStatus::kWarn, "fd-limit",
                 fmt::format("RLIMIT_NOFILE hard limit {} is below {}: the VMM serves fewer vsock streams and "
                             "open shared files",
                             limit.rlim_max, kWantedFds),
                 fmt::format("raise the nofile hard limit to {} or more (limits.conf, or LimitNOFILE= for a "
                             "systemd unit)",
                             kWantedFds));
}

CheckResult check_io_uring() {
  io_uring_params params{};
  const UniqueFd ring(static_cast<int>(::syscall(__NR_io_uring_setup, 1, &params)));
  if (ring) return ok("io_uring", "available (shares use it for file I/O)");
  const int err = errno;
  const std::string detail = fmt::format("io_uring_setup failed ({}): shares fall back to slower synchronous file "
                                         "I/O",
                                         std::strerror(err));
  if (err == ENOSYS)
    return problem(CheckStatus::kWarn, "io_uring", detail, "use a kernel built with CONFIG_IO_URING");
  const std::string sysctl = io_uring_sysctl();
  if (sysctl == "1" || sysctl == "2")
    return problem(CheckStatus::kWarn, "io_uring", detail,
                   fmt::format("kernel.io_uring_disabled is {}: sudo sysctl kernel.io_uring_disabled=0{}", sysctl,
                               sysctl == "1" ? " (or add yourself to kernel.io_uring_group)" : ""));
  return problem(CheckStatus::kWarn, "io_uring", detail,
                 "a seccomp filter (e.g. a container's) blocks it: allow io_uring_setup, io_uring_enter and "
                 "io_uring_register");
}

std::vector<CheckResult> run_host_checks() {
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  return {check_kvm_device(),           check_guest_image(),    check_root_image(), check_vmm(),
          check_git_tool(),             check_state_dir(state_dir()), check_fd_limit(nofile), check_io_uring()};
}

std::string format_checks(const std::vector<CheckResult>& results, bool json) {
  if (json) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const auto& r : results)
      a.push_back({{"check", r.check},
                   {"ok", r.status != CheckStatus::kFail},
                   {"status", r.status == CheckStatus::kOk ? "ok" : r.status == CheckStatus::kWarn ? "warn" : "fail"},
                   {"detail", r.detail},
                   {"fix", r.fix.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.fix)}});
    return a.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  }
  std::string text;
  for (const auto& r : results) {
    const char* word = r.status == CheckStatus::kOk ? "ok  " : r.status == CheckStatus::kWarn ? "warn" : "FAIL";
    text += fmt::format("{} {}: {}", word, r.check, r.detail);
    if (!r.fix.empty()) text += fmt::format(" — fix: {}", r.fix);
    text += "\n";
  }
  return text;
}

int run_doctor_command(bool json, std::ostream& out) {
  const std::vector<CheckResult> results = run_host_checks();
  out << format_checks(results, json);
  const bool failed =
      std::any_of(results.begin(), results.end(), [](const CheckResult& r) { return r.status == CheckStatus::kFail; });
  return failed ? kExitFailure : kExitOk;
}

}  // namespace ksbox::cli
