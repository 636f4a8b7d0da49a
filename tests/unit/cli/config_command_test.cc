// `ksbox init`, `ksbox config` and write_file_atomic.
#include "cli/config_command.h"

#include <sys/stat.h>
#include <gtest/gtest.h>

#include <sstream>

#include "vmm/atomic_file.h"
#include "cli/host_checks.h"
#include "tests/unit/test_helpers.h"

namespace ksbox::cli {
namespace {

using ksbox::testing::file_contents;
using ksbox::testing::TempDir;
namespace fs = std::filesystem;

TEST(AtomicFile, WritesAndReplacesWithNothingLeftBehind) {
  TempDir dir;
  const fs::path f = dir.path() / "f.txt";
  write_file_atomic(f, "one");
  EXPECT_EQ(file_contents(f), "one");
  write_file_atomic(f, std::string(100'000, 'x'));
  EXPECT_EQ(file_contents(f), std::string(100'000, 'x'));
  write_file_atomic(f, "");
  EXPECT_EQ(file_contents(f), "");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);  // no temporary file left
}

TEST(AtomicFile, TakesTheModeUnderTheUmask) {
  TempDir dir;
  const mode_t old = ::umask(022);
  write_file_atomic(dir.path() / "a", "x", 0666);
  write_file_atomic(dir.path() / "b", "x", 0600);
  ::umask(old);
  struct stat st{};
  ASSERT_EQ(::stat((dir.path() / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(::stat((dir.path() / "b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AtomicFile, FailureNamesThePathAndLeavesTheOldFile) {
  TempDir dir;
  EXPECT_KSBOX_ERROR(write_file_atomic(dir.path() / "missing-dir" / "f", "x"), "missing-dir");
  // Renaming a file over a non-empty directory fails after the data is written.
  fs::create_directories(dir.path() / "d" / "child");
  EXPECT_KSBOX_ERROR(write_file_atomic(dir.path() / "d", "x"), "cannot rename");
  EXPECT_TRUE(fs::is_directory(dir.path() / "d" / "child"));
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);  // the temporary file was removed
}

TEST(InitCommand, WritesTheDefaultsWithTheDirectorysName) {
  TempDir dir;
  const fs::path project = dir.path() / "My App";
  fs::create_directory(project);
  std::ostringstream out, err;
  EXPECT_EQ(run_init_command(project, false, std::nullopt, out, err), 0) << err.str();
  EXPECT_NE(out.str().find(".ksbox.json"), std::string::npos);
  const auto c = load_project_config(project);
  ASSERT_TRUE(c);
  SandboxConfig want;
  want.name = "my-app";
  EXPECT_EQ(*c, want);
  EXPECT_TRUE(file_contents(project / kConfigFileName).ends_with("}\n"));
}

TEST(InitCommand, RefusesToOverwriteWithoutForce) {
  TempDir dir;
  write_file_atomic(dir.path() / kConfigFileName, "{\"name\": \"keep\"}");
  std::ostringstream out, err;
  EXPECT_EQ(run_init_command(dir.path(), false, std::nullopt, out, err), 1);
  EXPECT_NE(err.str().find("already exists; use --force"), std::string::npos) << err.str();
  EXPECT_EQ(file_contents(dir.path() / kConfigFileName), "{\"name\": \"keep\"}");
  EXPECT_EQ(out.str(), "");

  EXPECT_EQ(run_init_command(dir.path(), true, "other", out, err), 0);
  EXPECT_EQ(load_project_config(dir.path())->name, "other");
}

TEST(InitCommand, RefusesABadNameOrAMissingDirectory) {
  TempDir dir;
  std::ostringstream out, err;
  EXPECT_EQ(run_init_command(dir.path(), false, "Bad Name", out, err), 1);
  EXPECT_NE(err.str().find("not a valid sandbox name"), std::string::npos) << err.str();
  EXPECT_FALSE(fs::exists(dir.path() / kConfigFileName));
  err.str("");
  EXPECT_EQ(run_init_command(dir.path() / "nope", false, std::nullopt, out, err), 1);
  EXPECT_NE(err.str().find("is not a directory"), std::string::npos) << err.str();
}

TEST(ConfigCommand, JsonIsTheConfigWithResourcesSizedToThisHost) {
  SandboxConfig c;
  c.name = "p";
  c.env = {"FOO"};
  std::ostringstream out, err;
  ASSERT_EQ(run_config_command(c, true, out, err), 0) << err.str();
  const SandboxConfig printed = parse_config(out.str(), "output");
  const Resources r = resolve_resources(c, host_memory_total_mib(), host_cpu_count());
  EXPECT_EQ(printed.memory_mib, r.memory_mib);
  EXPECT_EQ(printed.vcpus, r.vcpus);
  SandboxConfig without_resources = printed;
  without_resources.memory_mib.reset();
  without_resources.vcpus.reset();
  EXPECT_EQ(without_resources, c);
}

TEST(ConfigCommand, TextHasOneLinePerKey) {
  SandboxConfig c;
  c.name = "p";
  c.memory_mib = 512;
  c.hooks.pre_up = {"make a", "make b"};
  c.shares = {{"data", "../d", true}};
  std::ostringstream out, err;
  ASSERT_EQ(run_config_command(c, false, out, err), 0) << err.str();
  const std::string t = out.str();
  for (const char* line : {"name                p\n", "memory_mib          512\n", "network             user\n",
                           "shares              data=../d:ro\n", "sync_mode           manual\n",
                           "hooks.pre_up        make a, make b\n", "hooks.post_down     -\n",
                           "image               auto\n", "disk_size           8G (default)\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line << " in\n" << t;
  EXPECT_NE(t.find("vcpus               "), std::string::npos);
  EXPECT_NE(t.find("(sized to the host)"), std::string::npos);
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 19);
}

TEST(ConfigCommand, ResourcesTheHostCannotGiveFail) {
  SandboxConfig c;
  c.memory_mib = uint64_t{1} << 39;  // 512 TiB
  std::ostringstream out, err;
  EXPECT_EQ(run_config_command(c, false, out, err), 1);
  EXPECT_NE(err.str().find("memory_mib: 549755813888 MiB is more than the host's"), std::string::npos) << err.str();
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace ksbox::cli
