#include "cli/host_checks.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <pwd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "vmm/kvm_required_caps.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kKvmApiVersion = 12;
constexpr const char* kNestedHint = "run ksbox inside the nested harness: tests/nested/with-kvm ksbox ...";

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// "vmx" or "svm" from the first flags line of /proc/cpuinfo, "" if neither.
std::string virtualization_flag(const fs::path& cpuinfo) {
  std::ifstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("flags")) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? 0 : line.find(':') + 1));
    std::string w;
    while (words >> w)
      if (w == "vmx" || w == "svm") return w;
    return "";
  }
  return "";
}

KvmStatus missing_device(const std::string& dev, const KvmHostPaths& host) {
  const std::string flag = virtualization_flag(host.cpuinfo);
  if (flag.empty())
    return {false,
            fmt::format("{} does not exist, and the CPU offers no hardware virtualization (no vmx or svm flag in {})",
                        dev, host.cpuinfo.string()),
            fmt::format("enable VT-x/AMD-V in the firmware settings (or nested virtualization, if this host is a "
                        "VM); without it, {}",
                        kNestedHint)};
  const std::string module = flag == "vmx" ? "kvm_intel" : "kvm_amd";
  if (!path_exists(host.sys_module / module))
    return {false, fmt::format("{} does not exist: the {} module is not loaded", dev, module),
            fmt::format("sudo modprobe {} (if it fails, `sudo dmesg | tail` says why, e.g. virtualization "
                        "disabled in the firmware)",
                        module)};
  return {false, fmt::format("{} does not exist although {} is loaded", dev, module),
          fmt::format("create it: sudo mknod {0} c 10 232 && sudo chgrp kvm {0} && sudo chmod 0660 {0} "
                      "(udev normally does this)",
                      dev)};
}

// Entries of /etc/group and /etc/passwd read with fgetgrent/fgetpwent: no
// NSS, which a static binary cannot load reliably.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

std::string group_name(gid_t gid, std::vector<std::string>* members = nullptr) {
  File f(std::fopen("/etc/group", "re"));
  while (f) {
    const group* g = ::fgetgrent(f.get());
    if (!g) break;
    if (g->gr_gid != gid) continue;
    if (members)
      for (char** m = g->gr_mem; m && *m; ++m) members->emplace_back(*m);
    return g->gr_name;
  }
  return std::to_string(gid);
}

bool password_entry(uid_t uid, std::string* name, std::string* home) {
  File f(std::fopen("/etc/passwd", "re"));
  while (f) {
    const passwd* p = ::fgetpwent(f.get());
    if (!p) break;
    if (p->pw_uid != uid) continue;
    if (name) *name = p->pw_name;
    if (home) *home = p->pw_dir;
    return true;
  }
  return false;
}

std::string user_name(uid_t uid) {
  std::string name;
  if (password_entry(uid, &name, nullptr)) return name;
  return std::to_string(uid);
}

bool in_session_groups(gid_t gid) {
  if (::getegid() == gid) return true;
  std::vector<gid_t> groups(static_cast<size_t>(std::max(::getgroups(0, nullptr), 0)));
  const int got = ::getgroups(static_cast<int>(groups.size()), groups.data());
  groups.resize(static_cast<size_t>(std::max(got, 0)));
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

KvmStatus permission_denied(const std::string& dev, const struct stat& st) {
  std::vector<std::string> members;
  const std::string group = group_name(st.st_gid, &members);
  const std::string me = user_name(::geteuid());
  KvmStatus s;
  s.problem = fmt::format("no read/write permission on {} (owner {}, group {}, mode {:04o})", dev,
                          user_name(st.st_uid), group, st.st_mode & 07777);
  const bool group_rw = (st.st_mode & (S_IRGRP | S_IWGRP)) == (S_IRGRP | S_IWGRP);
  if (group_rw && st.st_gid != 0) {
    if (std::find(members.begin(), members.end(), me) != members.end() && !in_session_groups(st.st_gid))
      s.fix = fmt::format("you are in group '{}' but this login session predates that: log out and back in "
                          "(or run `newgrp {}`)",
                          group, group);
    else
      s.fix = fmt::format("sudo usermod -aG {} $USER, then log out and back in", group);
  } else {
    s.fix = fmt::format("sudo chgrp kvm {0} && sudo chmod 0660 {0}, then sudo usermod -aG kvm $USER and log in "
                        "again (a udev rule KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\" makes it permanent)",
                        dev);
  }
  return s;
}

int ioctl_retry(int fd, unsigned long req, long arg) {
  int r;
  do r = ::ioctl(fd, req, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

bool is_executable_file(const fs::path& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

bool is_readable_file(const fs::path& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), R_OK) == 0;
}

void set_why(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

}  // namespace

KvmStatus check_kvm(const std::string& dev, const KvmHostPaths& host) {
  struct stat st{};
  if (::stat(dev.c_str(), &st) < 0) {
    if (errno == ENOENT) return missing_device(dev, host);
    return {false, fmt::format("cannot use {}: {}", dev, std::strerror(errno)),
            fmt::format("check the path and its directories' permissions")};
  }
  // kvm-pvm serves /dev/kvm without hardware virtualization, but its
  // emulator lacks instructions every x86_64 kernel uses (vmm/vcpu_loop.cc).
  if (path_exists(host.sys_module / "kvm_pvm") && !path_exists(host.sys_module / "kvm_intel") &&
      !path_exists(host.sys_module / "kvm_amd"))
    return {false,
            fmt::format("{} is provided by kvm-pvm, which cannot run ksbox's unmodified guest kernel", dev),
            fmt::format("use a host with VT-x/AMD-V (kvm_intel or kvm_amd), or {}", kNestedHint)};
  const UniqueFd fd(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    if (errno == EACCES || errno == EPERM) return permission_denied(dev, st);
    return {false, fmt::format("cannot open {}: {}", dev, std::strerror(errno)),
            "check that the kvm module loaded without errors (sudo dmesg | grep -i kvm)"};
  }
  if (!S_ISCHR(st.st_mode))
    return {false, fmt::format("{} is not a character device", dev),
            fmt::format("the KVM device is character device 10:232; remove {} and reload the kvm module", dev)};
  const int version = ioctl_retry(fd.get(), KVM_GET_API_VERSION, 0);
  if (version < 0)
    return {false, fmt::format("{} is not a KVM device: KVM_GET_API_VERSION failed: {}", dev, std::strerror(errno)),
            "point ksbox at the KVM device (/dev/kvm, character device 10:232)"};
  if (version != kKvmApiVersion)
    return {false, fmt::format("{} speaks KVM API {}, ksbox needs {}", dev, version, kKvmApiVersion),
            "use a Linux kernel with the standard KVM API (any since 2.6.22)", version};
  for (const auto& [cap, name] : kRequiredKvmCaps)
    if (ioctl_retry(fd.get(), KVM_CHECK_EXTENSION, cap) <= 0)
      return {false, fmt::format("this kernel's KVM lacks {}, which ksbox-vmm needs", name),
              "use a newer Linux kernel (6.1 or later is tested)", version};
  return {true, "", "", version};
}

fs::path self_exe_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

std::optional<GuestImage> find_guest_image(std::string* why) {
  return find_guest_image(std::getenv("KSBOX_GUEST_DIR"), self_exe_dir(), why);
}

std::optional<GuestImage> find_guest_image(const char* guest_dir_env, const fs::path& exe_dir, std::string* why) {
  const bool from_env = guest_dir_env && *guest_dir_env;
  if (!from_env && exe_dir.empty()) {
    set_why(why, "cannot find the guest image: the ksbox executable's directory is unknown; set KSBOX_GUEST_DIR");
    return std::nullopt;
  }
  const fs::path dir = from_env ? fs::path(guest_dir_env) : (exe_dir / ".." / "guest").lexically_normal();
  const std::string where = from_env ? fmt::format("in $KSBOX_GUEST_DIR ({})", dir.string())
                                     : fmt::format("next to ksbox ({})", dir.string());
  GuestImage image{dir / kGuestKernelFile, dir / kGuestInitrdFile, std::nullopt, dir};
  for (const fs::path& f : {image.kernel, image.initrd}) {
    if (!is_readable_file(f)) {
      set_why(why, fmt::format("no guest image {}: {} is {}", where, f.filename().string(),
                               path_exists(f) ? "not a readable file" : "missing"));
      return std::nullopt;
    }
  }
  if (is_readable_file(dir / kGuestRootfsFile)) image.rootfs = dir / kGuestRootfsFile;
  return image;
}

std::optional<fs::path> find_in_path(std::string_view name, const char* path_env) {
  std::string_view path = path_env ? path_env : "";
  while (!path.empty()) {
    const size_t colon = std::min(path.find(':'), path.size());
    const fs::path c = fs::path(path.substr(0, colon)) / name;
    if (colon > 0 && is_executable_file(c)) return c;
    path.remove_prefix(std::min(colon + 1, path.size()));
  }
  return std::nullopt;
}

std::optional<fs::path> find_vmm(std::string* why) {
  return find_vmm(std::getenv("KSBOX_VMM"), self_exe_dir(), std::getenv("PATH"), why);
}

std::optional<fs::path> find_vmm(const char* vmm_env, const fs::path& exe_dir, const char* path_env,
                                 std::string* why) {
  constexpr const char* kVmm = "ksbox-vmm";
  if (vmm_env && *vmm_env) {
    if (is_executable_file(vmm_env)) return fs::path(vmm_env);
    set_why(why, fmt::format("$KSBOX_VMM ({}) is not an executable file", vmm_env));
    return std::nullopt;
  }
  std::vector<fs::path> candidates;
  if (!exe_dir.empty()) {
    candidates.push_back((exe_dir / ".." / "vmm" / kVmm).lexically_normal());
    candidates.push_back(exe_dir / kVmm);
  }
  for (const auto& c : candidates)
    if (is_executable_file(c)) return c;
  if (auto found = find_in_path(kVmm, path_env)) return found;
  std::string looked;
  for (const auto& c : candidates) looked += c.string() + ", ";
  set_why(why, fmt::format("{} not found (looked at {}and in $PATH)", kVmm, looked));
  return std::nullopt;
}

std::optional<fs::path> find_sibling_tool(const std::string& name, std::string* why) {
  const fs::path dir = self_exe_dir();
  if (!dir.empty() && is_executable_file(dir / name)) return dir / name;
  set_why(why, fmt::format("{} not found next to ksbox ({})", name, (dir / name).string()));
  return std::nullopt;
}

fs::path state_dir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg && fs::path(xdg).is_absolute()) return fs::path(xdg) / "ksbox";
  std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
  if (home.empty()) password_entry(::getuid(), nullptr, &home);
  return fs::path(home) / ".local" / "state" / "ksbox";
}

uint64_t host_memory_total_mib() {
  struct sysinfo si{};
  if (::sysinfo(&si) < 0) return 0;
  return uint64_t{si.totalram} * si.mem_unit / (1024 * 1024);
}

unsigned host_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 0;
}

}  // namespace ksbox::cli
