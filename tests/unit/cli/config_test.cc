// .ksbox.json: every key, every bad value named by its key, unknown keys,
// the round trip, names, and the sizing of resources to the host.
#include "cli/config.h"

#include <gtest/gtest.h>


#include "vmm/atomic_file.h"
#include "tests/unit/test_helpers.h"

namespace ksbox::cli {
namespace {

using ksbox::testing::TempDir;

constexpr const char* kEveryKey = R"({
  // comments are allowed
  "name": "my-project.2",
  "memory_mib": 3072,
  "vcpus": 3,
  "network": "filtered",
  "allow": ["github.com", "pypi.org"],
  "env": ["FOO", "BAR_2"],
  "forward_agent_keys": false,
  "shares": [{"tag": "data", "host_dir": "../data", "read_only": true},
             {"tag": "cache", "host_dir": "/var/cache/x"}],
  "sync_mode": "auto-idle",
  "idle_seconds": 60,
  "workspace": "live",
  "image": "initramfs",
  "disk_size": "20G",
  "git_name": "Ada Lovelace",
  "git_email": "ada@example.org",
  "hooks": {"pre_up": ["make deps"], "post_up": ["echo up", "true"], "pre_down": ["echo down"],
            "post_down": ["rm -f .lock"]}
})";

TEST(Config, ParsesEveryKey) {
  const SandboxConfig c = parse_config(kEveryKey, "t.json");
  EXPECT_EQ(c.name, "my-project.2");
  EXPECT_EQ(c.memory_mib, 3072u);
  EXPECT_EQ(c.vcpus, 3u);
  EXPECT_EQ(c.network, NetworkMode::kFiltered);
  EXPECT_EQ(c.allow, (std::vector<std::string>{"github.com", "pypi.org"}));
  EXPECT_EQ(c.env, (std::vector<std::string>{"FOO", "BAR_2"}));
  EXPECT_FALSE(c.forward_agent_keys);
  ASSERT_EQ(c.shares.size(), 2u);
  EXPECT_EQ(c.shares[0], (ShareSpec{"data", "../data", true}));
  EXPECT_EQ(c.shares[1], (ShareSpec{"cache", "/var/cache/x", false}));
  EXPECT_EQ(c.sync_mode, SyncMode::kAutoIdle);
  EXPECT_EQ(c.idle_seconds, 60u);
  EXPECT_EQ(c.workspace, WorkspaceMode::kLive);
  EXPECT_EQ(c.image, ImageKind::kInitramfs);
  EXPECT_EQ(c.disk_size, uint64_t{20} << 30);
  EXPECT_EQ(c.git_name, "Ada Lovelace");
  EXPECT_EQ(c.git_email, "ada@example.org");
  EXPECT_EQ(c.hooks.pre_up, (std::vector<std::string>{"make deps"}));
  EXPECT_EQ(c.hooks.post_up, (std::vector<std::string>{"echo up", "true"}));
  EXPECT_EQ(c.hooks.pre_down, (std::vector<std::string>{"echo down"}));
  EXPECT_EQ(c.hooks.post_down, (std::vector<std::string>{"rm -f .lock"}));
}

TEST(Config, AbsentKeysKeepTheDefaults) {
  const SandboxConfig c = parse_config("{}", "t.json");
  EXPECT_EQ(c, SandboxConfig{});
  EXPECT_EQ(c.network, NetworkMode::kUser);
  EXPECT_EQ(c.sync_mode, SyncMode::kManual);
  EXPECT_EQ(c.workspace, WorkspaceMode::kClone);
  EXPECT_TRUE(c.forward_agent_keys);
  EXPECT_EQ(c.idle_seconds, 300u);
  EXPECT_FALSE(c.memory_mib);
  EXPECT_FALSE(c.vcpus);
  EXPECT_EQ(c.image, ImageKind::kAuto);
  EXPECT_FALSE(c.disk_size);
}

TEST(Config, NullMeansUnsetForTheOptionalKeys) {
  const SandboxConfig c =
      parse_config(R"({"memory_mib": null, "vcpus": null, "disk_size": null, "git_name": null, "git_email": null})",
                   "t.json");
  EXPECT_EQ(c, SandboxConfig{});
}

TEST(Config, RoundTripsThroughJson) {
  const SandboxConfig c = parse_config(kEveryKey, "t.json");
  EXPECT_EQ(parse_config(to_json(c), "again"), c);
  EXPECT_EQ(parse_config(to_json(c, -1), "again"), c);
  EXPECT_EQ(to_json(c, -1).find('\n'), std::string::npos);
  SandboxConfig defaults;
  defaults.name = "x";
  EXPECT_EQ(parse_config(to_json(defaults), "again"), defaults);
}

TEST(Config, ToJsonWritesEveryKeyWithNullForUnset) {
  const std::string j = to_json(SandboxConfig{});
  for (const char* key : {"\"name\"", "\"memory_mib\": null", "\"vcpus\": null", "\"network\": \"user\"", "\"allow\"",
                          "\"env\"", "\"forward_agent_keys\": true", "\"shares\"", "\"sync_mode\": \"manual\"",
                          "\"idle_seconds\": 300", "\"workspace\": \"clone\"", "\"image\": \"auto\"",
                          "\"disk_size\": null", "\"git_name\": null",
                          "\"git_email\": null", "\"hooks\"", "\"pre_up\"", "\"post_up\"", "\"pre_down\"",
                          "\"post_down\""})
    EXPECT_NE(j.find(key), std::string::npos) << key << " in " << j;
}

struct BadCase {
  const char* json;
  const char* message;  // the expected "<source>: <key>: ..." start
};

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, NamesTheKey) {
  try {
    parse_config(GetParam().json, "ksbox.json");
    ADD_FAILURE() << "accepted " << GetParam().json;
  } catch (const ConfigError& e) {
    EXPECT_TRUE(std::string_view(e.what()).starts_with(GetParam().message)) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryKey, BadConfig,
    ::testing::Values(
        BadCase{R"({"nmae": "x"})", "ksbox.json: nmae: unknown key (known here: name, memory_mib"},
        BadCase{R"([])", "ksbox.json: (top level): expected an object, got array"},
        BadCase{R"({"name": 3})", "ksbox.json: name: expected a string, got the number 3"},
        BadCase{R"({"name": "Bad Name"})", "ksbox.json: name: 'Bad Name' is not a valid sandbox name"},
        BadCase{R"({"memory_mib": "2G"})", "ksbox.json: memory_mib: expected a whole number >= 0, got the string"},
        BadCase{R"({"memory_mib": -5})", "ksbox.json: memory_mib: expected a whole number >= 0, got the number -5"},
        BadCase{R"({"memory_mib": 1.5})", "ksbox.json: memory_mib: expected a whole number >= 0, got the number 1.5"},
        BadCase{R"({"memory_mib": 100})", "ksbox.json: memory_mib: 100 MiB is below the minimum of 256 MiB"},
        BadCase{R"({"memory_mib": 99999999999999})", "ksbox.json: memory_mib: 99999999999999 is too large"},
        BadCase{R"({"vcpus": 0})", "ksbox.json: vcpus: must be at least 1"},
        BadCase{R"({"vcpus": 5000000000})", "ksbox.json: vcpus: 5000000000 is too large"},
        BadCase{R"({"vcpus": true})", "ksbox.json: vcpus: expected a whole number >= 0, got true"},
        BadCase{R"({"network": "nat"})", "ksbox.json: network: 'nat' is not one of: off, user, filtered"},
        BadCase{R"({"allow": "github.com"})", "ksbox.json: allow: expected an array of strings"},
        BadCase{R"({"allow": ["ok.org", 7]})", "ksbox.json: allow[1]: expected a string"},
        BadCase{R"({"allow": ["https://x.org"]})", "ksbox.json: allow[0]: 'https://x.org' is not a domain name"},
        BadCase{R"({"allow": ["a..b"]})", "ksbox.json: allow[0]: 'a..b' is not a domain name"},
        BadCase{R"({"env": ["A", "B=secret"]})", "ksbox.json: env[1]: 'B=secret' is not a variable name"},
        BadCase{R"({"env": ["1A"]})", "ksbox.json: env[0]: '1A' is not a variable name"},
        BadCase{R"({"forward_agent_keys": "yes"})", "ksbox.json: forward_agent_keys: expected true or false"},
        BadCase{R"({"shares": {}})", "ksbox.json: shares: expected an array of objects, got object"},
        BadCase{R"({"shares": ["x"]})", "ksbox.json: shares[0]: expected an object, got the string"},
        BadCase{R"({"shares": [{"tag": "a", "host_dir": "d", "mode": 1}]})",
                "ksbox.json: shares[0].mode: unknown key (known here: tag, host_dir, read_only)"},
        BadCase{R"({"shares": [{"host_dir": "d"}]})", "ksbox.json: shares[0].tag: missing"},
        BadCase{R"({"shares": [{"tag": "a"}]})", "ksbox.json: shares[0].host_dir: missing"},
        BadCase{R"({"shares": [{"tag": "a", "host_dir": ""}]})", "ksbox.json: shares[0].host_dir: must not be empty"},
        BadCase{R"({"shares": [{"tag": "a", "host_dir": "d", "read_only": 1}]})",
                "ksbox.json: shares[0].read_only: expected true or false"},
        BadCase{R"({"shares": [{"tag": "Has Space", "host_dir": "d"}]})",
                "ksbox.json: shares[0].tag: 'Has Space' is not a valid tag"},
        BadCase{R"({"shares": [{"tag": "workspace", "host_dir": "d"}]})",
                "ksbox.json: shares[0].tag: 'workspace' is the workspace's own tag"},
        BadCase{R"({"shares": [{"tag": "a", "host_dir": "d"}, {"tag": "a", "host_dir": "e"}]})",
                "ksbox.json: shares[1].tag: 'a' is used by an earlier share"},
        BadCase{R"({"shares": [{"tag": "a", "host_dir": "d"}, {"tag": "b", "host_dir": "d"},
                               {"tag": "c", "host_dir": "d"}, {"tag": "e", "host_dir": "d"}]})",
                "ksbox.json: shares: 4 shares; at most 3 besides the workspace"},
        BadCase{R"({"sync_mode": "auto"})",
                "ksbox.json: sync_mode: 'auto' is not one of: manual, auto-commit, auto-idle"},
        BadCase{R"({"idle_seconds": 0})", "ksbox.json: idle_seconds: 0 is not between 1 and 604800"},
        BadCase{R"({"idle_seconds": 604801})", "ksbox.json: idle_seconds: 604801 is not between 1 and 604800"},
        BadCase{R"({"workspace": "rw"})", "ksbox.json: workspace: 'rw' is not one of: clone, live"},
        BadCase{R"({"image": "debian"})", "ksbox.json: image: 'debian' is not one of: auto, rootfs, initramfs"},
        BadCase{R"({"disk_size": 8})", "ksbox.json: disk_size: expected a string, got the number 8"},
        BadCase{R"({"disk_size": "8"})", "ksbox.json: disk_size: '8' is not a size such as \"8G\""},
        BadCase{R"({"disk_size": "8GB"})", "ksbox.json: disk_size: '8GB' is not a size such as \"8G\""},
        BadCase{R"({"disk_size": "100M"})", "ksbox.json: disk_size: 100M is not between 256M and 16T"},
        BadCase{R"({"disk_size": "17T"})", "ksbox.json: disk_size: 17T is not between 256M and 16T"},
        BadCase{R"({"git_name": ""})", "ksbox.json: git_name: must be one non-empty line"},
        BadCase{R"({"git_email": "a@b\nx"})", "ksbox.json: git_email: must be one non-empty line"},
        BadCase{R"({"git_email": 5})", "ksbox.json: git_email: expected a string"},
        BadCase{R"({"hooks": []})", "ksbox.json: hooks: expected an object, got array"},
        BadCase{R"({"hooks": {"pre-up": []}})",
                "ksbox.json: hooks.pre-up: unknown key (known here: pre_up, post_up, pre_down, post_down)"},
        BadCase{R"({"hooks": {"pre_up": "make"}})", "ksbox.json: hooks.pre_up: expected an array of strings"},
        BadCase{R"({"hooks": {"pre_up": ["a", 1]}})", "ksbox.json: hooks.pre_up[1]: expected a string"},
        BadCase{R"({"hooks": {"post_down": ["  "]}})",
                "ksbox.json: hooks.post_down[0]: must be a non-empty shell command line"},
        BadCase{R"({"name": "x",})", "ksbox.json: invalid JSON: parse error at line 1, column 14: syntax error"}));

TEST(Config, ValidateConfigAppliesTheSameRules) {
  SandboxConfig c;
  c.env = {"OK", "NOT OK"};
  EXPECT_KSBOX_ERROR(validate_config(c, "command line"), "command line: env[1]: 'NOT OK' is not a variable name");
  c.env = {"OK"};
  EXPECT_NO_THROW(validate_config(c, "command line"));
}

TEST(ConfigName, Validation) {
  for (const std::string good : {"a", "0", "my-proj", "a.b_c-d", "1.2.3"}) EXPECT_NO_THROW(validate_name(good)) << good;
  EXPECT_NO_THROW(validate_name(std::string(63, 'x')));
  for (const std::string bad : {"", "-a", ".a", "_a", "A", "a b", "a/b", "é"})
    EXPECT_THROW(validate_name(bad), ConfigError) << bad;
  EXPECT_THROW(validate_name(std::string(64, 'x')), ConfigError);
  EXPECT_KSBOX_ERROR(validate_name("A"), "'A' is not a valid sandbox name: use 1-63 characters");
}

TEST(ConfigName, DefaultIsTheSanitizedBaseName) {
  EXPECT_EQ(default_name_for("/home/u/My Project"), "my-project");
  EXPECT_EQ(default_name_for("/home/u/app/"), "app");
  EXPECT_EQ(default_name_for("/x/..Hidden__dir.."), "hidden__dir");
  EXPECT_EQ(default_name_for("/x/---"), "sandbox");
  EXPECT_EQ(default_name_for("/"), "sandbox");
  EXPECT_EQ(default_name_for("/x/" + std::string(100, 'a')), std::string(63, 'a'));
  for (const char* p : {"/a/Ünïcödé", "/a/x y z", "/a/_", "/a/1.2.3", "rel/dir"})
    EXPECT_NO_THROW(validate_name(default_name_for(p))) << p;
}

TEST(ConfigShares, RelativeHostDirsAreFromTheProjectRoot) {
  EXPECT_EQ(share_host_dir({"d", "../data", false}, "/p/proj"), "/p/data");
  EXPECT_EQ(share_host_dir({"d", "sub/./x", false}, "/p/proj"), "/p/proj/sub/x");
  EXPECT_EQ(share_host_dir({"d", "/abs", false}, "/p/proj"), "/abs");
}

TEST(ConfigEnv, ForwardedNamesAreConfigThenAgentKeysWithoutDuplicates) {
  SandboxConfig c;
  c.env = {"FOO", "OPENAI_API_KEY"};
  const auto names = forwarded_env_names(c);
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names[0], "FOO");
  EXPECT_EQ(names[1], "OPENAI_API_KEY");
  EXPECT_EQ(std::count(names.begin(), names.end(), "OPENAI_API_KEY"), 1);
  EXPECT_NE(std::find(names.begin(), names.end(), "ANTHROPIC_API_KEY"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "GEMINI_API_KEY"), names.end());
  c.forward_agent_keys = false;
  EXPECT_EQ(forwarded_env_names(c), c.env);
}

TEST(ConfigModes, NamesRoundTrip) {
  for (auto m : {NetworkMode::kOff, NetworkMode::kUser, NetworkMode::kFiltered})
    EXPECT_EQ(parse_network_mode(to_string(m)), m);
  for (auto m : {SyncMode::kManual, SyncMode::kAutoCommit, SyncMode::kAutoIdle}) EXPECT_EQ(parse_sync_mode(to_string(m)), m);
  for (auto m : {WorkspaceMode::kClone, WorkspaceMode::kLive}) EXPECT_EQ(parse_workspace_mode(to_string(m)), m);
  EXPECT_EQ(to_string(SyncMode::kAutoCommit), "auto-commit");
  EXPECT_EQ(to_string(NetworkMode::kFiltered), "filtered");
  EXPECT_FALSE(parse_network_mode("User"));
  EXPECT_FALSE(parse_sync_mode("auto_commit"));
  EXPECT_FALSE(parse_workspace_mode(""));
  for (auto k : {ImageKind::kAuto, ImageKind::kRootfs, ImageKind::kInitramfs}) EXPECT_EQ(parse_image_kind(to_string(k)), k);
  EXPECT_FALSE(parse_image_kind("disk"));
}

TEST(ConfigDiskSize, BinaryUnits) {
  EXPECT_EQ(parse_disk_size("8G"), uint64_t{8} << 30);
  EXPECT_EQ(parse_disk_size("8g"), uint64_t{8} << 30);
  EXPECT_EQ(parse_disk_size("8GiB"), uint64_t{8} << 30);
  EXPECT_EQ(parse_disk_size("512M"), uint64_t{512} << 20);
  EXPECT_EQ(parse_disk_size("2T"), uint64_t{2} << 40);
  for (const char* bad : {"", "G", "8", "8K", "-8G", "8 G", "8.5G", "8GB", "99999999999999T", "0x10G"})
    EXPECT_FALSE(parse_disk_size(bad)) << bad;
  EXPECT_EQ(format_disk_size(uint64_t{8} << 30), "8G");
  EXPECT_EQ(format_disk_size(uint64_t{2} << 40), "2T");
  EXPECT_EQ(format_disk_size(uint64_t{1536} << 20), "1536M");
  EXPECT_EQ(parse_disk_size(format_disk_size(uint64_t{1536} << 20)), uint64_t{1536} << 20);
}

TEST(ConfigResources, SizedToTheHostWhenUnset) {
  const SandboxConfig c;
  EXPECT_EQ(resolve_resources(c, 64 * 1024, 16), (Resources{8192, 8}));  // capped
  EXPECT_EQ(resolve_resources(c, 16 * 1024, 8), (Resources{4096, 4}));   // a quarter, half the CPUs
  EXPECT_EQ(resolve_resources(c, 4096, 2), (Resources{1024, 1}));        // the 1 GiB floor
  EXPECT_EQ(resolve_resources(c, 1024, 1), (Resources{512, 1}));         // never more than half the host
  EXPECT_EQ(resolve_resources(c, 0, 0), (Resources{1024, 1}));           // host unknown
  EXPECT_KSBOX_ERROR(resolve_resources(c, 400, 1), "memory_mib: the host has 400 MiB, too little");
}

TEST(ConfigResources, ExplicitValuesAreCheckedAgainstMinimumsAndTheHost) {
  SandboxConfig c;
  c.memory_mib = 256;
  c.vcpus = 4;
  EXPECT_EQ(resolve_resources(c, 1024, 4), (Resources{256, 4}));
  c.memory_mib = 255;
  EXPECT_KSBOX_ERROR(resolve_resources(c, 1024, 4), "memory_mib: 255 MiB is below the minimum of 256 MiB");
  c.memory_mib = 2048;
  EXPECT_KSBOX_ERROR(resolve_resources(c, 1024, 4), "memory_mib: 2048 MiB is more than the host's 1024 MiB");
  c.memory_mib = 1024;
  c.vcpus = 5;
  EXPECT_KSBOX_ERROR(resolve_resources(c, 1024, 4), "vcpus: 5 is more than the host's 4 CPUs");
  c.vcpus = 0;
  EXPECT_KSBOX_ERROR(resolve_resources(c, 1024, 4), "vcpus: must be at least 1");
}

TEST(ConfigFile, LoadsFromTheProjectRoot) {
  TempDir dir;
  EXPECT_EQ(load_project_config(dir.path()), std::nullopt);
  write_file_atomic(dir.path() / kConfigFileName, R"({"name": "p", "vcpus": 2})");
  const auto c = load_project_config(dir.path());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "p");
  EXPECT_EQ(c->vcpus, 2u);
  write_file_atomic(dir.path() / kConfigFileName, R"({"vcpus": "two"})");
  EXPECT_KSBOX_ERROR(load_project_config(dir.path()),
                     (dir.path() / kConfigFileName).string() + ": vcpus: expected a whole number");
}

TEST(ConfigFile, UnreadableFileIsAnError) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / kConfigFileName);
  EXPECT_KSBOX_ERROR(load_project_config(dir.path()), "cannot read");
}

}  // namespace
}  // namespace ksbox::cli
