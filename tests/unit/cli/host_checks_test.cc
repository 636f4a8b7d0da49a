// check_kvm's diagnoses on paths that are not a usable KVM device (a fake
// /sys/module and /proc/cpuinfo choose the case), and the lookup of the
// guest image and the VMM.
#include "cli/host_checks.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gtest/gtest.h>


#include "vmm/atomic_file.h"
#include "tests/unit/test_helpers.h"

namespace ksbox::cli {
namespace {

using ksbox::testing::TempDir;
namespace fs = std::filesystem;

bool has(const std::string& s, std::string_view needle) { return s.find(needle) != std::string::npos; }

// A fake host: /sys/module with the given modules, /proc/cpuinfo with flags.
struct FakeHost {
  TempDir dir{"ksbox-fakehost"};
  KvmHostPaths paths{dir.path() / "module", dir.path() / "cpuinfo"};
  FakeHost(std::initializer_list<const char*> modules, const std::string& flags) {
    fs::create_directories(paths.sys_module);
    for (const char* m : modules) fs::create_directory(paths.sys_module / m);
    write_file_atomic(paths.cpuinfo, "processor\t: 0\nvendor_id\t: X\nflags\t\t: fpu " + flags + " sse2\n\n");
  }
};

TEST(CheckKvm, MissingDeviceWithoutVirtualizationInTheCpu) {
  FakeHost host({}, "pae");
  const KvmStatus s = check_kvm("/nonexistent/kvm", host.paths);
  EXPECT_FALSE(s.usable);
  EXPECT_TRUE(has(s.problem, "/nonexistent/kvm does not exist")) << s.problem;
  EXPECT_TRUE(has(s.problem, "no vmx or svm flag")) << s.problem;
  EXPECT_TRUE(has(s.fix, "tests/nested/with-kvm")) << s.fix;
}

TEST(CheckKvm, MissingDeviceWithTheVendorModuleNotLoaded) {
  FakeHost intel({"kvm"}, "vmx");
  KvmStatus s = check_kvm("/nonexistent/kvm", intel.paths);
  EXPECT_TRUE(has(s.problem, "the kvm_intel module is not loaded")) << s.problem;
  EXPECT_TRUE(has(s.fix, "sudo modprobe kvm_intel")) << s.fix;
  FakeHost amd({}, "svm");
  s = check_kvm("/nonexistent/kvm", amd.paths);
  EXPECT_TRUE(has(s.fix, "sudo modprobe kvm_amd")) << s.fix;
}

TEST(CheckKvm, MissingDeviceWithTheModuleLoaded) {
  FakeHost host({"kvm", "kvm_amd"}, "svm");
  const KvmStatus s = check_kvm("/nonexistent/kvm", host.paths);
  EXPECT_TRUE(has(s.problem, "does not exist although kvm_amd is loaded")) << s.problem;
  EXPECT_TRUE(has(s.fix, "mknod /nonexistent/kvm c 10 232")) << s.fix;
}

TEST(CheckKvm, KvmPvmCannotRunOurGuest) {
  FakeHost host({"kvm", "kvm_pvm"}, "");
  const KvmStatus s = check_kvm("/dev/null", host.paths);
  EXPECT_FALSE(s.usable);
  EXPECT_TRUE(has(s.problem, "kvm-pvm")) << s.problem;
  EXPECT_TRUE(has(s.fix, "tests/nested/with-kvm")) << s.fix;
}

TEST(CheckKvm, ARegularFileIsNotADevice) {
  FakeHost host({"kvm", "kvm_intel"}, "vmx");
  const fs::path file = host.dir.path() / "kvm";
  write_file_atomic(file, "");
  const KvmStatus s = check_kvm(file, host.paths);
  EXPECT_FALSE(s.usable);
  EXPECT_EQ(s.problem, file.string() + " is not a character device");
  EXPECT_TRUE(has(s.fix, "10:232")) << s.fix;
}

TEST(CheckKvm, ADeviceThatIsNotKvmFailsTheApiVersion) {
  FakeHost host({"kvm", "kvm_intel"}, "vmx");
  const KvmStatus s = check_kvm("/dev/null", host.paths);
  EXPECT_FALSE(s.usable);
  EXPECT_TRUE(has(s.problem, "/dev/null is not a KVM device: KVM_GET_API_VERSION failed: ")) << s.problem;
}

// No read/write permission: as root, checked in a child that dropped to
// an unprivileged uid (root opens anything); a non-root user cannot open
// a mode 0000 file either.
TEST(CheckKvm, NoPermissionNamesOwnerGroupModeAndTheFix) {
  FakeHost host({"kvm", "kvm_intel"}, "vmx");
  const fs::path file = host.dir.path() / "kvm";
  write_file_atomic(file, "", 0);
  ::chmod(host.dir.path().c_str(), 0755);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(2);
    const KvmStatus s = check_kvm(file, host.paths);
    const std::string msg = s.problem + "\n" + s.fix;
    [[maybe_unused]] auto n = ::write(pipefd[1], msg.data(), msg.size());
    _exit(s.usable ? 1 : 0);
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_TRUE(has(msg, "no read/write permission on " + file.string())) << msg;
  EXPECT_TRUE(has(msg, "mode 0000")) << msg;
  struct stat st{};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  if (st.st_uid == 0) {
    EXPECT_TRUE(has(msg, "owner root, group root")) << msg;
  }
  EXPECT_TRUE(has(msg, "usermod -aG kvm $USER")) << msg;
}

class GuestImageTest : public ::testing::Test {
 protected:
  TempDir dir{"ksbox-guest"};
  void touch(const fs::path& p) {
    fs::create_directories(p.parent_path());
    write_file_atomic(p, "x");
  }
};

TEST_F(GuestImageTest, FromKsboxGuestDir) {
  const fs::path g = dir.path() / "g";
  fs::create_directories(g);
  std::string why;
  EXPECT_FALSE(find_guest_image(g.c_str(), "/unused", &why));
  EXPECT_EQ(why, "no guest image in $KSBOX_GUEST_DIR (" + g.string() + "): vmlinux is missing");
  touch(g / "vmlinux");
  EXPECT_FALSE(find_guest_image(g.c_str(), "/unused", &why));
  EXPECT_TRUE(has(why, "initramfs.cpio.gz is missing")) << why;
  touch(g / "initramfs.cpio.gz");
  const auto image = find_guest_image(g.c_str(), "/unused", &why);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->kernel, g / "vmlinux");
  EXPECT_EQ(image->initrd, g / "initramfs.cpio.gz");
}

TEST_F(GuestImageTest, ThroughTheEnvironmentVariable) {
  touch(dir.path() / "vmlinux");
  touch(dir.path() / "initramfs.cpio.gz");
  ::setenv("KSBOX_GUEST_DIR", dir.path().c_str(), 1);
  const auto image = find_guest_image();
  ::unsetenv("KSBOX_GUEST_DIR");
  ASSERT_TRUE(image);
  EXPECT_EQ(image->kernel, dir.path() / "vmlinux");
}

TEST_F(GuestImageTest, NextToTheExecutableInTheBuildTree) {
  const fs::path exe_dir = dir.path() / "build" / "cli";
  fs::create_directories(exe_dir);
  std::string why;
  EXPECT_FALSE(find_guest_image(nullptr, exe_dir, &why));
  EXPECT_TRUE(has(why, "next to ksbox (" + (dir.path() / "build" / "guest").string() + ")")) << why;
  touch(dir.path() / "build" / "guest" / "vmlinux");
  touch(dir.path() / "build" / "guest" / "initramfs.cpio.gz");
  const auto image = find_guest_image("", exe_dir, &why);  // empty = unset
  ASSERT_TRUE(image);
  EXPECT_EQ(image->kernel, dir.path() / "build" / "guest" / "vmlinux");
}

TEST_F(GuestImageTest, ADirectoryIsNotAKernel) {
  fs::create_directories(dir.path() / "vmlinux");
  touch(dir.path() / "initramfs.cpio.gz");
  std::string why;
  EXPECT_FALSE(find_guest_image(dir.path().c_str(), "", &why));
  EXPECT_TRUE(has(why, "vmlinux is not a readable file")) << why;
}

TEST_F(GuestImageTest, FindVmmInOrder) {
  const fs::path exe_dir = dir.path() / "build" / "cli";
  const fs::path in_path = dir.path() / "bin";
  fs::create_directories(exe_dir);
  auto make_exe = [&](const fs::path& p) {
    touch(p);
    fs::permissions(p, fs::perms::owner_all);
  };
  std::string why;
  const std::string path_env = "/nonexistent:" + in_path.string();
  EXPECT_FALSE(find_vmm(nullptr, exe_dir, path_env.c_str(), &why));
  EXPECT_TRUE(has(why, "ksbox-vmm not found")) << why;
  make_exe(in_path / "ksbox-vmm");
  EXPECT_EQ(find_vmm(nullptr, exe_dir, path_env.c_str(), &why), in_path / "ksbox-vmm");
  make_exe(exe_dir / "ksbox-vmm");
  EXPECT_EQ(find_vmm(nullptr, exe_dir, path_env.c_str(), &why), exe_dir / "ksbox-vmm");
  make_exe(dir.path() / "build" / "vmm" / "ksbox-vmm");
  EXPECT_EQ(find_vmm(nullptr, exe_dir, path_env.c_str(), &why), dir.path() / "build" / "vmm" / "ksbox-vmm");
  const fs::path env = dir.path() / "my-vmm";
  EXPECT_FALSE(find_vmm(env.c_str(), exe_dir, path_env.c_str(), &why));  // no fallback from $KSBOX_VMM
  EXPECT_TRUE(has(why, "$KSBOX_VMM (" + env.string() + ") is not an executable file")) << why;
  make_exe(env);
  EXPECT_EQ(find_vmm(env.c_str(), exe_dir, path_env.c_str(), &why), env);
}

TEST(HostChecks, SelfExeDirAndSiblings) {
  const fs::path dir = self_exe_dir();
  EXPECT_TRUE(fs::exists(dir / "ksbox_cli_tests")) << dir;
  std::string why;
  EXPECT_FALSE(find_sibling_tool("no-such-ksbox-tool", &why));
  EXPECT_EQ(why, "no-such-ksbox-tool not found next to ksbox (" + (dir / "no-such-ksbox-tool").string() + ")");
  EXPECT_EQ(find_sibling_tool("ksbox_cli_tests"), dir / "ksbox_cli_tests");
}

TEST(HostChecks, StateDirFollowsXdg) {
  const char* old_xdg = std::getenv("XDG_STATE_HOME");
  const std::string saved = old_xdg ? old_xdg : "";
  ::setenv("XDG_STATE_HOME", "/xdg/state", 1);
  EXPECT_EQ(state_dir(), "/xdg/state/ksbox");
  ::setenv("XDG_STATE_HOME", "relative", 1);  // ignored, as the spec says
  const fs::path fallback = state_dir();
  ::unsetenv("XDG_STATE_HOME");
  EXPECT_EQ(state_dir(), fallback);
  EXPECT_TRUE(fallback.string().ends_with("/.local/state/ksbox")) << fallback;
  if (old_xdg) ::setenv("XDG_STATE_HOME", saved.c_str(), 1);
}

TEST(HostChecks, HostSize) {
  EXPECT_GT(host_memory_total_mib(), 0u);
  EXPECT_GE(host_cpu_count(), 1u);
  EXPECT_LE(host_cpu_count(), static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_CONF)));
}

}  // namespace
}  // namespace ksbox::cli
