// End to end: ksbox-vmm refuses bad arguments with a clear message and exit
// status 1 (2 for syntax), before it needs /dev/kvm - so these run anywhere.
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/e2e/guest.h"

namespace ksbox::test {
namespace {

std::string temp_file(const std::string& name, const std::string& content) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/" + std::to_string(::getpid()) + "-" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// Arguments are checked before the kernel's contents, so any file will do.
std::string any_file() { return temp_file("kernel", std::string(8192, 'k')); }

void expect_refused(const std::vector<std::string>& args, int code, const std::string& message) {
  std::vector<std::string> argv = {vmm_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_process(argv, {.timeout = std::chrono::seconds(30)});
  EXPECT_EQ(r.exit_code, code) << describe(r);
  EXPECT_NE(r.err.find(message), std::string::npos) << "want '" << message << "'\n" << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
}

TEST(VmmArguments, MissingKernelFile) {
  expect_refused({"--kernel", "/nonexistent/vmlinux"}, 1, "cannot open kernel '/nonexistent/vmlinux'");
}

TEST(VmmArguments, KernelIsADirectory) { expect_refused({"--kernel", "/"}, 1, "is not a regular file"); }

TEST(VmmArguments, EmptyKernel) { expect_refused({"--kernel", temp_file("empty", "")}, 1, "is empty"); }

TEST(VmmArguments, CorruptKernel) {
  expect_refused({"--kernel", temp_file("garbage", std::string(8192, 'x'))}, 1,
                 "neither an ELF vmlinux nor a bzImage");
}

TEST(VmmArguments, TruncatedKernel) {
  expect_refused({"--kernel", temp_file("short", "\x7f" "ELF")}, 1, "truncated");
}

TEST(VmmArguments, MissingInitrd) {
  expect_refused({"--kernel", any_file(), "--initrd", "/nonexistent.cpio"}, 1,
                 "cannot open initrd '/nonexistent.cpio'");
}

TEST(VmmArguments, NetworkModeAndPublish) {
  expect_refused({"--kernel", any_file(), "--network", "tap"}, 2, "--network");
  expect_refused({"--kernel", any_file(), "--publish", "8080:80"}, 1, "--publish needs a network: add --network user");
  expect_refused({"--kernel", any_file(), "--network", "user", "--publish", "80"}, 2, "[HOSTIP:]HOSTPORT:GUESTPORT");
  expect_refused({"--kernel", any_file(), "--network", "user", "--publish", "host:80:80"}, 2, "not an IPv4 address");
}

TEST(VmmArguments, MemoryTooSmall) { expect_refused({"--kernel", any_file(), "--memory", "8"}, 1, "below the minimum"); }

TEST(VmmArguments, MemoryAboveHost) {
  expect_refused({"--kernel", any_file(), "--memory", "1000000000"}, 1, "more than the host");
}

TEST(VmmArguments, ZeroVcpus) { expect_refused({"--kernel", any_file(), "--vcpus", "0"}, 1, "--vcpus must be at least 1"); }

TEST(VmmArguments, TooManyVcpus) { expect_refused({"--kernel", any_file(), "--vcpus", "100000"}, 1, "--vcpus"); }

TEST(VmmArguments, NoKernelIsAUsageError) { expect_refused({}, 2, "--kernel is required"); }

TEST(VmmArguments, NonNumericVcpusIsAUsageError) {
  expect_refused({"--kernel", any_file(), "--vcpus", "two"}, 2, "--vcpus");
}

TEST(VmmArguments, ShareOfAMissingDirectory) {
  expect_refused({"--kernel", any_file(), "--share", "workspace=/nonexistent-share"}, 1,
                 "--share workspace: cannot use '/nonexistent-share'");
}

TEST(VmmArguments, ShareOfAFile) {
  expect_refused({"--kernel", any_file(), "--share", "workspace=" + any_file()}, 1, "is not a directory");
}

TEST(VmmArguments, ShareWithoutATagIsAUsageError) {
  expect_refused({"--kernel", any_file(), "--share", "/srv"}, 2, "expected TAG=HOSTDIR[:ro]");
}

TEST(VmmArguments, ShareTagUsedTwice) {
  expect_refused({"--kernel", any_file(), "--share", "w=/", "--share", "w=/tmp:ro"}, 1, "used twice");
}

TEST(VmmArguments, UnknownShareCacheIsAUsageError) {
  expect_refused({"--kernel", any_file(), "--share-cache", "sometimes"}, 2, "--share-cache");
}

TEST(VmmArguments, UnknownFsIoEngineIsAUsageError) {
  expect_refused({"--kernel", any_file(), "--fs-io", "aio"}, 2, "--fs-io");
}

TEST(VmmArguments, FsPollWindowBeyond10msIsAUsageError) {
  expect_refused({"--kernel", any_file(), "--fs-poll-us", "10001"}, 2, "--fs-poll-us");
  expect_refused({"--kernel", any_file(), "--fs-poll-us", "-1"}, 2, "--fs-poll-us");
}

}  // namespace
}  // namespace ksbox::test
