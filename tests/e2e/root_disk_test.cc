// End to end: `ksbox run` boots the default root file system
// (guest-image/rootfs/, rootfs.ext4 beside the guest kernel, a read-only
// virtio-blk disk) under the sandbox's own writable layer (layer.ext4 in its
// state directory, made with mkfs.ext4 on the first run; the agent finds
// both by serial and overlays them, guest-image/agent/root_disk.h). The tools
// and agent CLIs run; a .deb installed with dpkg and files in ~ and /etc
// survive stop and run; a changed base image is refused; --fresh resets.
// Three boots in all; the whole case took ~4 min in L1 (the agent CLIs'
// first starts are most of it).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/process.h"
#include "tests/e2e/sandbox.h"

namespace ksbox::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kName = "rooted";
constexpr std::chrono::seconds kBootWait{900};  // per ksbox run: boot + mkfs, in L1

class RootDiskRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0)
        << "no usable /dev/kvm: run this test through tests/nested/with-kvm (ctest does)";
    ASSERT_TRUE(fs::exists(fs::path(KSBOX_GUEST_DIR) / "rootfs.ext4"))
        << "no root image: cmake --build build --target guest-rootfs";
    // Sockets and the layer on L1's tmpfs, not on the 9p root.
    root_ = fs::path("/tmp") / ("ksbox-rootrun-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    // The build's guest directory as is: vmlinux, initramfs, rootfs.ext4.
    ::setenv("KSBOX_GUEST_DIR", KSBOX_GUEST_DIR, 1);
    ::setenv("XDG_STATE_HOME", (root_ / "state").c_str(), 1);
    state_ = root_ / "state/ksbox" / kName;
  }
  void TearDown() override {
    ksbox({"destroy", "--force", kName});
    fs::remove_all(root_);
  }

  ProcessResult ksbox(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(600)) {
    return run_ksbox(std::move(args), timeout);
  }
  ProcessResult run(const std::vector<std::string>& host_cmd) { return run_process(host_cmd); }

  // A git project whose one commit carries a tiny .deb (built here with
  // dpkg-deb), so the guest finds it in /workspace.
  fs::path make_project() {
    const fs::path proj = root_ / kName;
    const fs::path pkg = root_ / "pkg";
    fs::create_directories(pkg / "DEBIAN");
    fs::create_directories(pkg / "usr/bin");
    std::ofstream(pkg / "DEBIAN/control") << "Package: ksbox-e2e-hello\nVersion: 1.0\nArchitecture: all\n"
                                             "Maintainer: ksbox tests <t@example.com>\n"
                                             "Description: a package installed in a sandbox\n";
    std::ofstream(pkg / "usr/bin/ksbox-e2e-hello") << "#!/bin/sh\necho hello from a package\n";
    fs::permissions(pkg / "usr/bin/ksbox-e2e-hello", fs::perms(0755));
    fs::create_directories(proj);
    auto r = run({"/usr/bin/dpkg-deb", "--root-owner-group", "--build", pkg.string(), (proj / "hello.deb").string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    for (std::vector<std::string> git : {std::vector<std::string>{"init", "-q", "-b", "main"},
                                         {"add", "hello.deb"},
                                         {"commit", "-qm", "a package"}}) {
      git.insert(git.begin(), {"/usr/bin/git", "-C", proj.string(), "-c", "user.name=T", "-c", "user.email=t@x"});
      r = run(git);
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    }
    return proj;
  }
  void start(const fs::path& proj, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"run", proj.string(), "--no-attach", "--vcpus", "1", "--memory", "1024",
                                  "--boot-timeout", "800"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = ksbox(args, kBootWait);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\nconsole:\n" << read_file(state_ / "logs/console.log");
  }
  void stop() {
    const auto r = ksbox({"stop", kName});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_NE((r.out + r.err).find("powered off"), std::string::npos) << "not a clean power-off: " << r.out << r.err;
  }
  // bash -c SCRIPT in the guest as the sandbox user.
  ProcessResult guest(const std::string& script) { return ksbox({"exec", kName, "--", "bash", "-c", script}); }
  json record() { return json::parse(read_file(state_ / "sandbox.json"), nullptr, false); }

  fs::path root_, state_;
};

#define ASSERT_OK(r) ASSERT_EQ((r).exit_code, 0) << (r).out << (r).err
#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST_F(RootDiskRunTest, PackagesAndHomePersistUntilFresh) {
  const fs::path proj = make_project();
  // 1. First run: the layer is made; the root disk is /.
  ASSERT_NO_FATAL_FAILURE(start(proj, {"--image", "rootfs", "--disk-size", "2G"}));
  const fs::path layer = state_ / "layer.ext4";
  ASSERT_TRUE(fs::exists(layer));
  EXPECT_EQ(fs::file_size(layer), uint64_t{2} << 30);
  json rec = record();
  EXPECT_EQ(rec["image"], "rootfs");
  EXPECT_EQ(rec["layer"]["base_uuid"].get<std::string>().size(), 36u) << rec.dump();

  auto r = guest("set -e; findmnt -no FSTYPE /; id -un; echo HOME=$HOME; for t in git node python3 claude gemini "
                 "codex; do echo \"$t: $($t --version)\"; done");
  ASSERT_OK(r);
  for (const char* want : {"overlay\n", "sandbox\n", "HOME=/home/sandbox\n", "git: git version 2.", "node: v22.",
                           "python3: Python 3.11", "claude: 2.", " (Claude Code)\n", "gemini: 0.", "codex: codex-cli "})
    EXPECT_HAS(r.out, want);
  // The shared base is read-only, even for root (found by serial, not by vdX order).
  r = ksbox({"exec", kName, "-u", "0", "--", "sh", "-c",
             "for d in /sys/block/vd*; do [ \"$(cat $d/serial)\" = ksbox-root ] && echo ro=$(cat $d/ro) && "
             "echo x > /dev/${d##*/} && echo WROTE; done; true"});
  EXPECT_EQ(r.out.find("WROTE"), std::string::npos) << "root wrote to the shared base\n" << r.out << r.err;
  EXPECT_EQ(r.out, "ro=1\n") << r.err;

  r = guest("set -e; sudo -n dpkg -i /workspace/hello.deb >/dev/null; ksbox-e2e-hello; echo kept > ~/note; "
            "sudo -n sh -c 'echo system > /etc/ksbox-e2e-marker'");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "hello from a package\n");
  r = ksbox({"status", kName});
  EXPECT_HAS(r.out, "image:     rootfs");
  ASSERT_NO_FATAL_FAILURE(stop());
  // On the layer file itself (the overlay's upper directory), not in a tmpfs.
  r = run({"/usr/sbin/debugfs", "-R", "cat /upper/home/sandbox/note", layer.string()});
  EXPECT_EQ(r.out, "kept\n") << r.err;

  // A base image that is not the one the layer was made over: refused
  // before anything boots, with the way out.
  const std::string saved = read_file(state_ / "sandbox.json");
  rec["layer"]["base_uuid"] = "00000000-0000-0000-0000-000000000000";
  std::ofstream(state_ / "sandbox.json") << rec.dump(2);
  r = ksbox({"run", proj.string(), "--no-attach"});
  EXPECT_EQ(r.exit_code, 7) << r.out << r.err;
  EXPECT_HAS(r.err, "the root image changed under sandbox rooted's layer");
  EXPECT_HAS(r.err, "ksbox run --fresh");
  EXPECT_EQ(ksbox({"status", kName, "--json"}).out.find("\"running\""), std::string::npos);
  std::ofstream(state_ / "sandbox.json") << saved;

  // 2. The same sandbox again (the image is found by default): all kept.
  ASSERT_NO_FATAL_FAILURE(start(proj));
  r = guest("ksbox-e2e-hello && dpkg-query -W -f='${Status}\\n' ksbox-e2e-hello && cat ~/note /etc/ksbox-e2e-marker");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "hello from a package\ninstall ok installed\nkept\nsystem\n");
  ASSERT_NO_FATAL_FAILURE(stop());

  // 3. --fresh: a new layer over the same base; the package and files are gone.
  ASSERT_NO_FATAL_FAILURE(start(proj, {"--fresh"}));
  r = guest("command -v ksbox-e2e-hello; dpkg-query -W ksbox-e2e-hello 2>&1; ls ~/note /etc/ksbox-e2e-marker 2>&1; "
            "git --version");
  EXPECT_EQ(r.out.find("/usr/bin/ksbox-e2e-hello"), std::string::npos) << r.out;
  EXPECT_HAS(r.out, "no packages found matching ksbox-e2e-hello");
  EXPECT_HAS(r.out, "cannot access '/home/sandbox/note'");
  EXPECT_HAS(r.out, "cannot access '/etc/ksbox-e2e-marker'");
  EXPECT_HAS(r.out, "git version 2.");
  EXPECT_EQ(record()["layer"]["base_uuid"], json::parse(saved)["layer"]["base_uuid"]) << "the same base";
  r = ksbox({"destroy", "--force", kName});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(state_));
}

}  // namespace
}  // namespace ksbox::test
