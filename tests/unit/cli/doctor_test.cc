// `ksbox doctor`: the output's shape (text and JSON) on this host, and the
// checks that take their inputs.
#include "cli/doctor.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/root_disk.h"
#include "vmm/atomic_file.h"
#include "tests/unit/test_helpers.h"

namespace ksbox::cli {
namespace {

using ksbox::testing::TempDir;
namespace fs = std::filesystem;

const std::vector<std::string> kChecks = {"kvm",       "guest-image", "root-image", "ksbox-vmm",
                                          "ksbox-git", "state-dir",   "fd-limit",   "io_uring"};

TEST(Doctor, TextIsOneLinePerCheckAndTheStatusFollowsFailures) {
  std::ostringstream out;
  const int status = run_doctor_command(false, out);
  std::istringstream lines(out.str());
  std::string line;
  size_t i = 0;
  bool any_fail = false;
  for (; std::getline(lines, line); ++i) {
    ASSERT_LT(i, kChecks.size()) << out.str();
    const std::string word = line.substr(0, 5);
    ASSERT_TRUE(word == "ok   " || word == "warn " || word == "FAIL ") << line;
    EXPECT_TRUE(line.substr(5).starts_with(kChecks[i] + ": ")) << line;
    EXPECT_EQ(line.find(" — fix: ") != std::string::npos, word != "ok   ") << line;
    any_fail = any_fail || word == "FAIL ";
  }
  EXPECT_EQ(i, kChecks.size());
  EXPECT_EQ(status, any_fail ? 1 : 0);
}

TEST(Doctor, JsonHasCheckOkDetailFix) {
  std::ostringstream out;
  const int status = run_doctor_command(true, out);
  const auto j = nlohmann::json::parse(out.str());
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), kChecks.size());
  bool any_fail = false;
  for (size_t i = 0; i < j.size(); ++i) {
    EXPECT_EQ(j[i]["check"], kChecks[i]);
    EXPECT_TRUE(j[i]["ok"].is_boolean());
    EXPECT_TRUE(j[i]["detail"].is_string());
    EXPECT_FALSE(j[i]["detail"].get<std::string>().empty());
    const std::string st = j[i]["status"];
    EXPECT_TRUE(st == "ok" || st == "warn" || st == "fail") << st;
    EXPECT_EQ(j[i]["ok"], st != "fail");
    EXPECT_EQ(j[i]["fix"].is_null(), st == "ok");
    any_fail = any_fail || st == "fail";
  }
  EXPECT_EQ(status, any_fail ? 1 : 0);
}

TEST(Doctor, FindsTheGuestImageThroughKsboxGuestDir) {
  TempDir dir;
  write_file_atomic(dir.path() / "vmlinux", "k");
  write_file_atomic(dir.path() / "initramfs.cpio.gz", "i");
  ::setenv("KSBOX_GUEST_DIR", dir.path().c_str(), 1);
  std::ostringstream out;
  run_doctor_command(false, out);
  ::setenv("KSBOX_GUEST_DIR", (dir.path() / "none").c_str(), 1);
  std::ostringstream missing;
  const int status = run_doctor_command(false, missing);
  ::unsetenv("KSBOX_GUEST_DIR");
  EXPECT_NE(out.str().find("ok   guest-image: " + (dir.path() / "vmlinux").string() + " and initramfs.cpio.gz\n"),
            std::string::npos)
      << out.str();
  EXPECT_NE(missing.str().find("FAIL guest-image: no guest image in $KSBOX_GUEST_DIR"), std::string::npos)
      << missing.str();
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.str().find("warn root-image: no rootfs.ext4 in " + dir.path().string() +
                           ": sandboxes boot the initramfs alone"),
            std::string::npos)
      << out.str();
}

TEST(Doctor, ReportsTheRootImageBesideTheKernel) {
  TempDir dir;
  write_file_atomic(dir.path() / "vmlinux", "k");
  write_file_atomic(dir.path() / "initramfs.cpio.gz", "i");
  write_file_atomic(dir.path() / "rootfs.ext4", std::string(4096, 'x'));
  ::setenv("KSBOX_GUEST_DIR", dir.path().c_str(), 1);
  std::ostringstream not_ext4;
  run_doctor_command(false, not_ext4);
  std::string why;
  const auto mkfs = find_mkfs_ext4(&why);
  ASSERT_TRUE(mkfs) << why;
  make_layer(*mkfs, dir.path() / "rootfs.ext4", uint64_t{64} << 20);
  std::ostringstream out;
  run_doctor_command(false, out);
  ::unsetenv("KSBOX_GUEST_DIR");
  EXPECT_NE(not_ext4.str().find("FAIL root-image: " + (dir.path() / "rootfs.ext4").string() + " is not an ext4 image"),
            std::string::npos)
      << not_ext4.str();
  EXPECT_NE(out.str().find("ok   root-image: " + (dir.path() / "rootfs.ext4").string() + " (ext4 UUID "),
            std::string::npos)
      << out.str();
}

TEST(Doctor, FormatsEachStatus) {
  const std::vector<CheckResult> r = {{"a", CheckStatus::kOk, "fine", ""},
                                      {"b", CheckStatus::kWarn, "meh", "do x"},
                                      {"c", CheckStatus::kFail, "broken", "do y"}};
  EXPECT_EQ(format_checks(r, false), "ok   a: fine\nwarn b: meh — fix: do x\nFAIL c: broken — fix: do y\n");
  const auto j = nlohmann::json::parse(format_checks(r, true));
  EXPECT_EQ(j[0], nlohmann::json::parse(R"({"check":"a","ok":true,"status":"ok","detail":"fine","fix":null})"));
  EXPECT_EQ(j[1], nlohmann::json::parse(R"({"check":"b","ok":true,"status":"warn","detail":"meh","fix":"do x"})"));
  EXPECT_EQ(j[2],
            nlohmann::json::parse(R"({"check":"c","ok":false,"status":"fail","detail":"broken","fix":"do y"})"));
}

TEST(Doctor, StateDir) {
  TempDir dir;
  CheckResult r = check_state_dir(dir.path());
  EXPECT_EQ(r.status, CheckStatus::kOk);
  EXPECT_EQ(r.detail, dir.path().string() + " writable");
  r = check_state_dir(dir.path() / "a" / "ksbox");
  EXPECT_EQ(r.status, CheckStatus::kOk);
  EXPECT_EQ(r.detail, (dir.path() / "a" / "ksbox").string() + " (will be created)");
  write_file_atomic(dir.path() / "file", "");
  r = check_state_dir(dir.path() / "file" / "ksbox");
  EXPECT_EQ(r.status, CheckStatus::kFail);
  EXPECT_EQ(r.detail, (dir.path() / "file").string() + " is not a directory");
  EXPECT_NE(r.fix.find("XDG_STATE_HOME"), std::string::npos);
}

TEST(Doctor, FdLimit) {
  EXPECT_EQ(check_fd_limit({1024, 1048576}).status, CheckStatus::kOk);
  EXPECT_EQ(check_fd_limit({1024, RLIM_INFINITY}).status, CheckStatus::kOk);
  const CheckResult low = check_fd_limit({1024, 1024});
  EXPECT_EQ(low.status, CheckStatus::kWarn);
  EXPECT_EQ(low.detail.rfind("RLIMIT_NOFILE hard limit 1024 is below 4096", 0), 0u) << low.detail;
}

TEST(Doctor, IoUringProbeGivesAFixWhenUnavailable) {
  const CheckResult r = check_io_uring();
  EXPECT_EQ(r.check, "io_uring");
  EXPECT_NE(r.status, CheckStatus::kFail);  // the shares fall back to sync I/O
  EXPECT_EQ(r.fix.empty(), r.status == CheckStatus::kOk) << r.detail;
}

}  // namespace
}  // namespace ksbox::cli
