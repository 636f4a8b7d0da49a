// End to end: ksbox-vmm boots the real guest kernel on /dev/kvm (inside the
// nested harness when the host has none; see tests/nested/with-kvm).
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "tests/e2e/guest.h"
#include "tests/support/elf_header.h"

namespace ksbox::test {
namespace {

class BootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0)
        << "no usable /dev/kvm: run this test through tests/nested/with-kvm (ctest does)";
    for (const char* f : {"vmlinux", "bzImage", "initramfs.cpio.gz"})
      ASSERT_EQ(::access(guest_file(f).c_str(), R_OK), 0)
          << guest_file(f) << " is missing: cmake --build build --target guest-image";
  }
};

uint64_t meminfo_kib(const std::string& out, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(key + ":\\s+([0-9]+) kB"))) return 0;
  return std::stoull(m[1]);
}

// A minimal ELF "kernel" whose entry point is `code`, loaded at 1 MiB.
std::string write_elf_kernel(const std::string& name, const std::vector<uint8_t>& code) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/" + name;
  constexpr uint64_t kLoad = 0x100000;
  const Elf64_Ehdr eh = x86_64_exec_header(kLoad, 1);
  Elf64_Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_flags = PF_R | PF_X;
  ph.p_offset = 4096;
  ph.p_vaddr = ph.p_paddr = kLoad;
  ph.p_filesz = ph.p_memsz = code.size();
  std::vector<uint8_t> file(4096 + code.size(), 0);
  std::memcpy(file.data(), &eh, sizeof eh);
  std::memcpy(file.data() + sizeof eh, &ph, sizeof ph);
  std::memcpy(file.data() + 4096, code.data(), code.size());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(file.data()),
                                               static_cast<std::streamsize>(file.size()));
  return path;
}

TEST_F(BootTest, VmlinuxBootsToInitAndRebootsWithStatusZero) {
  auto r = boot({.kernel = "vmlinux", .cmd = "echo hello-from-$(uname -m)"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("ksbox-init: up"), std::string::npos) << describe(r);
  EXPECT_EQ(cmd_output(r.out), "hello-from-x86_64\n") << describe(r);
  EXPECT_EQ(r.err, "") << describe(r);
}

TEST_F(BootTest, BzImageBootsThroughTheBootProtocol) {
  auto r = boot({.kernel = "bzImage", .cmd = "echo hello-bz; cat /proc/cmdline"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto out = cmd_output(r.out);
  EXPECT_NE(out.find("hello-bz\n"), std::string::npos) << describe(r);
  // The VMM's defaults precede the user's words on the command line.
  EXPECT_NE(out.find("console=ttyS0 reboot=k panic=1 quiet"), std::string::npos) << describe(r);
}

TEST_F(BootTest, OneVcpuShowsOneCpu) {
  auto r = boot({.cmd = "nproc", .vmm_args = {"--vcpus", "1"}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(cmd_output(r.out), "1\n") << describe(r);
}

TEST_F(BootTest, TwoVcpusShowTwoCpusOnline) {
  auto r = boot({.cmd = "nproc; cat /sys/devices/system/cpu/online", .vmm_args = {"--vcpus", "2"}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(cmd_output(r.out), "2\n0-1\n") << describe(r);
}

TEST_F(BootTest, MemTotalMatchesMemoryFlag) {
  auto r = boot({.cmd = "cat /proc/meminfo", .vmm_args = {"--memory", "256"}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const uint64_t total = meminfo_kib(cmd_output(r.out), "MemTotal");
  // MemTotal is RAM minus what the kernel reserves for itself at boot.
  EXPECT_LE(total, 256u * 1024) << describe(r);
  EXPECT_GE(total, 256u * 1024 - 32 * 1024) << describe(r);
}

TEST_F(BootTest, MemoryAboveTheDeviceGapIsUsable) {
  // 3.5 GiB: 3 GiB below the MMIO gap, the other 512 MiB above 4 GiB.
  auto r = boot({.cmd = "grep MemTotal /proc/meminfo; grep 'System RAM' /proc/iomem",
                 .vmm_args = {"--memory", "3584"}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto out = cmd_output(r.out);
  EXPECT_NE(out.find("00100000-bfffffff : System RAM"), std::string::npos) << describe(r);
  EXPECT_NE(out.find("100000000-11fffffff : System RAM"), std::string::npos) << describe(r);
  // Above 4 GiB the kernel also reserves 64 MiB of SWIOTLB and ~56 MiB of page structs.
  const uint64_t total = meminfo_kib(out, "MemTotal");
  EXPECT_LE(total, 3584u * 1024) << describe(r);
  EXPECT_GE(total, 3584u * 1024 - 192 * 1024) << describe(r);
}

TEST_F(BootTest, VirtioRngFeedsTheGuestsHwrng) {
  auto r = boot({.cmd = "cat /sys/class/misc/hw_random/rng_current; "
                        "dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c; "
                        "head -c 16 /dev/hwrng | od -An -tx1; head -c 16 /dev/hwrng | od -An -tx1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto out = cmd_output(r.out);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(out, m, std::regex("virtio_rng\\.0\n256\n( [0-9a-f ]+)\n( [0-9a-f ]+)\n")))
      << describe(r);
  EXPECT_NE(m[1], m[2]) << "two reads of /dev/hwrng gave the same bytes\n" << describe(r);
  EXPECT_NE(m[1].str(), " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00") << describe(r);
}

TEST_F(BootTest, InitCommandStatusIsReported) {
  auto r = boot({.cmd = "exit 42"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(cmd_status(r.out), 42) << describe(r);
}

TEST_F(BootTest, PanickingInitEndsWithNonZeroStatusAndReason) {
  auto r = boot({.cmd = "true", .then = "panic"});
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_NE(r.err.find("ksbox-vmm: guest kernel panic: Attempted to kill init!"), std::string::npos)
      << describe(r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one-line reason\n" << describe(r);
}

TEST_F(BootTest, PanicThatHangsStillEndsTheVmm) {
  // panic=0: the kernel spins forever after the panic; the VMM ends it anyway.
  auto r = boot({.cmd = "true", .then = "panic", .extra_cmdline = "quiet panic=0"});
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_NE(r.err.find("guest kernel panic: Attempted to kill init!"), std::string::npos) << describe(r);
}

TEST_F(BootTest, TripleFaultEndsWithNonZeroStatus) {
  // ud2 with an empty IDT: #UD -> #DF -> triple fault.
  const auto kernel = write_elf_kernel("ud2.elf", {0x0f, 0x0b});
  auto r = run_process({vmm_path(), "--kernel", kernel}, {.timeout = std::chrono::seconds(120)});
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_NE(r.err.find("triple fault"), std::string::npos) << describe(r);
}

TEST_F(BootTest, KvmInternalErrorEndsWithNonZeroStatus) {
  // mov eax, 0xd0000000; jmp rax: executing from the device gap, which KVM
  // cannot emulate.
  const auto kernel = write_elf_kernel("mmio-jump.elf", {0xb8, 0x00, 0x00, 0x00, 0xd0, 0xff, 0xe0});
  auto r = run_process({vmm_path(), "--kernel", kernel}, {.timeout = std::chrono::seconds(120)});
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_NE(r.err.find("KVM internal error"), std::string::npos) << describe(r);
}

TEST_F(BootTest, SigtermStopsARunningGuest) {
  ProcessOptions p;
  p.send_signal_when = [](const std::string& out) { return out.find("ksbox-init: cmd-end") != std::string::npos; };
  p.signal = SIGTERM;
  // "shell" waits on the console forever: only the signal ends it.
  auto r = boot({.cmd = "true", .then = "shell"}, p);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM) << describe(r);
  EXPECT_FALSE(r.timed_out) << describe(r);
  EXPECT_NE(r.err.find("stopped by signal"), std::string::npos) << describe(r);
}

TEST_F(BootTest, ConsoleCanGoToALogFile) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string log = std::string(tmp ? tmp : "/tmp") + "/console-" + std::to_string(::getpid()) + ".log";
  ::unlink(log.c_str());
  auto r = boot({.cmd = "echo logged-line", .vmm_args = {"--console", log}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("logged-line"), std::string::npos) << text;
  ::unlink(log.c_str());
}

}  // namespace
}  // namespace ksbox::test
