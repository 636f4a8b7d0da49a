// What ksbox needs from the host, found or diagnosed with a fix a user can
// act on: a usable /dev/kvm, the guest image, the ksbox-vmm and ksbox-git
// binaries, the state directory, and the host's size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace ksbox::cli {

struct KvmStatus {
  bool usable = false;
  std::string problem;  // what is wrong (empty when usable)
  std::string fix;      // what to do about it
  int api_version = 0;  // KVM_GET_API_VERSION when it answered
};

// Where check_kvm looks for the module and CPU facts (tests point it at
// fake trees).
struct KvmHostPaths {
  std::filesystem::path sys_module = "/sys/module";
  std::filesystem::path cpuinfo = "/proc/cpuinfo";
};

// Diagnoses, in this order: a missing device (CPU without vmx/svm, vendor
// module not loaded, or no device node), kvm-pvm (it serves /dev/kvm but
// cannot run our unmodified guest kernel), no read/write permission (with
// the owner, group and mode, and the usermod/newgrp fix), not a character
// device, KVM_GET_API_VERSION failing or not 12.
KvmStatus check_kvm(const std::string& dev = "/dev/kvm", const KvmHostPaths& host = {});

struct GuestImage {
  std::filesystem::path kernel, initrd;
  // The Debian root file system (guest-image/rootfs/) when the directory
  // has a readable one; without it sandboxes boot the initramfs alone.
  std::optional<std::filesystem::path> rootfs;
  std::filesystem::path dir;  // where they were found
};
inline constexpr const char* kGuestKernelFile = "vmlinux";
inline constexpr const char* kGuestInitrdFile = "initramfs.cpio.gz";
inline constexpr const char* kGuestRootfsFile = "rootfs.ext4";

// The directory of the running executable (/proc/self/exe), empty if unknown.
std::filesystem::path self_exe_dir();

// The guest kernel and initramfs, and the root file system if it is there:
// in $KSBOX_GUEST_DIR when set (no fallback then), else in <exe dir>/../guest/
// (the build tree: build/cli/ksbox next to build/guest/; installed:
// <prefix>/bin/ksbox and <prefix>/guest/). On failure (kernel or initramfs
// missing) returns nullopt and sets *why (if given) to what was missing and
// where it looked.
std::optional<GuestImage> find_guest_image(std::string* why = nullptr);
// The same with the environment value and the executable's directory given.
std::optional<GuestImage> find_guest_image(const char* guest_dir_env, const std::filesystem::path& exe_dir,
                                           std::string* why);

// ksbox-vmm: $KSBOX_VMM when set (no fallback then), else
// <exe dir>/../vmm/ksbox-vmm (build tree), <exe dir>/ksbox-vmm (installed
// side by side), then $PATH.
std::optional<std::filesystem::path> find_vmm(std::string* why = nullptr);
std::optional<std::filesystem::path> find_vmm(const char* vmm_env, const std::filesystem::path& exe_dir,
                                              const char* path_env, std::string* why);

// The first executable NAME in the directories of `path_env` (a $PATH value).
std::optional<std::filesystem::path> find_in_path(std::string_view name, const char* path_env);

// A tool built and installed next to ksbox (e.g. "ksbox-git"): <exe dir>/NAME.
std::optional<std::filesystem::path> find_sibling_tool(const std::string& name, std::string* why = nullptr);

// ksbox's state: $XDG_STATE_HOME/ksbox when that is an absolute path, else
// $HOME/.local/state/ksbox (HOME from the password file when unset).
std::filesystem::path state_dir();

// The host's RAM (MemTotal) in MiB, and the CPUs this process may run on;
// 0 when unknown.
uint64_t host_memory_total_mib();
unsigned host_cpu_count();

}  // namespace ksbox::cli
