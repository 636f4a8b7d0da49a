// End to end: a host directory shared over the in-process virtio-fs device,
// mounted by ksbox-agent on /workspace, used from the guest by git, tar and
// fs_probe (tests/e2e/fs_probe.cc) and checked from the host (inside the
// nested harness when the host has no /dev/kvm).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <ctime>
#include <future>

#include "tests/e2e/control_client.h"
#include "tests/e2e/guest.h"
#include "tests/e2e/process.h"
#include "tests/e2e/guest_test.h"
#include "tests/e2e/sandbox.h"

namespace ksbox::test {
namespace {

namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

// fs_probe's contents: byte i of writer `seed`'s data.
char pattern(unsigned seed, size_t i) { return static_cast<char>('a' + (seed * 7 + i * 13) % 26); }

class FsTest : public GuestTest {
 protected:
  void boot(SandboxOptions opts = {}) {
    opts.workspace = true;
    opts.memory_mib = 1024;
    opts.vmm_args.insert(opts.vmm_args.end(), {"--share-cache", cache_});
    GuestTest::boot(opts);
  }
  // sh -c SCRIPT in the guest, as the sandbox user unless `user` says otherwise.
  ProcessResult sh(const std::string& script, const std::string& user = "1000") {
    return sb_->exec({"sh", "-c", script}, {"-u", user, "-w", "/workspace"}, {.timeout = std::chrono::seconds(300)});
  }
  std::string ws(const std::string& rel = "") const { return sb_->workspace() + (rel.empty() ? "" : "/" + rel); }
  // Boots under 'worktree' (no attribute expires during a test) with a
  // control socket; returns its path.
  std::string boot_worktree_with_control() {
    cache_ = "worktree";
    std::string ctl = "/tmp/ksbox-fs-ctl-" + std::to_string(::getpid()) + ".sock";
    boot({.vmm_args = {"--control", ctl}});
    return ctl;
  }
  // The share's FUSE requests by opcode, from the control socket `ctl`.
  static nlohmann::json fs_ops(const std::string& ctl) {
    return control_request(ctl, {{"cmd", "fs"}})["shares"][0]["ops"];
  }
  // Two readings, for a failed expectation's message.
  static std::string readings(const nlohmann::json& before, const nlohmann::json& after) {
    return "before: " + before.dump() + "\nafter: " + after.dump();
  }
  // Requests of opcode `op` between two fs_ops() readings.
  static uint64_t added(const nlohmann::json& before, const nlohmann::json& after, const std::string& op) {
    const nlohmann::json::json_pointer count("/" + op + "/count");
    return after.value(count, uint64_t{0}) - before.value(count, uint64_t{0});
  }
  // A script run as sh() runs it, and the share's requests around it.
  struct Counted {
    ProcessResult r;
    nlohmann::json before, after;
    uint64_t added(const std::string& op) const { return FsTest::added(before, after, op); }
    std::string readings() const { return FsTest::readings(before, after); }
  };
  Counted counted(const std::string& ctl, const std::string& script, const std::string& user = "1000") {
    Counted c;
    c.before = fs_ops(ctl);
    c.r = sh(script, user);
    c.after = fs_ops(ctl);
    return c;
  }

  std::string cache_ = "auto";
};

// The tests that do not need host edits to show up in a running guest run
// under the cache policies: 'auto' (the default), 'always' (with the guest's
// writeback cache) and 'worktree' (what ksbox run gives a clone).
class FsCacheTest : public FsTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    cache_ = GetParam();
    FsTest::SetUp();
  }
};
INSTANTIATE_TEST_SUITE_P(Cache, FsCacheTest, ::testing::Values("auto", "always", "worktree"));

#define EXPECT_OK(r) EXPECT_EQ((r).exit_code, 0) << sb_->describe(r)
#define ASSERT_OK(r) ASSERT_EQ((r).exit_code, 0) << sb_->describe(r)

TEST_F(FsTest, WorkspaceIsMountedAndOwnedByTheSandboxUser) {
  boot();
  auto r = sh("grep ' /workspace ' /proc/mounts; stat -c '%u:%g' /workspace; echo hi > made-by-guest; "
              "stat -c '%u:%g %a' made-by-guest");
  ASSERT_OK(r);
  EXPECT_NE(r.out.find("workspace /workspace virtiofs rw,nosuid,nodev"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1000:1000\n1000:1000 644"), std::string::npos) << r.out;
  // On the host the file belongs to whoever runs the VMM (this test's user).
  struct stat st {};
  ASSERT_EQ(::stat(ws("made-by-guest").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(read_file(ws("made-by-guest")), "hi\n");
  // The guest cannot give a file away to a host user of its choosing.
  r = sh("chown 0:0 made-by-guest", "0");
  EXPECT_NE(r.exit_code, 0) << sb_->describe(r);
  ASSERT_EQ(::stat(ws("made-by-guest").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
  // The agent raised the mount's readahead from the kernel's 128 KiB to a
  // full 1 MiB request.
  r = sh("cat /sys/class/bdi/$(grep ' /workspace ' /proc/self/mountinfo | cut -d' ' -f3)/read_ahead_kb");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "1024\n") << sb_->describe(r);
}

TEST_F(FsTest, GitWorksInTheGuestAndTheHostSeesTheCommits) {
  boot();
  auto r = sh("set -e; git init -q -b main repo; cd repo; echo hello > a.txt; mkdir -p src/deep; "
              "for i in 1 2 3 4 5 6 7 8 9; do echo $i > src/deep/f$i; done; "
              "git add .; git -c user.name=Agent -c user.email=agent@ksbox commit -qm 'from the guest'; "
              "git status --porcelain; git log --format=%s");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "from the guest\n");
  r = host("set -e; cd workspace/repo; git status --porcelain; git log --format=%s; git fsck --no-progress 2>&1; "
           "echo host > b.txt; git add b.txt; git -c user.name=Host -c user.email=h@h commit -qm 'from the host'");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "from the guest\n");
  // The host's commit is visible to the guest once the attribute cache times out.
  r = sh("sleep 2; cd repo; git status --porcelain; git log --format=%s; cat b.txt");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "from the host\nfrom the guest\nhost\n");
}

TEST_P(FsCacheTest, UntarOfAThousandFilesMatchesOnTheHost) {
  // Made on the host, packed, unpacked in the guest, compared on the host.
  boot();
  auto r = host(
      "set -e; python3 - <<'EOF'\n"
      "import os\n"
      "for d in range(20):\n"
      "    os.makedirs(f'tree/d{d}/sub', exist_ok=True)\n"
      "    for f in range(50):\n"
      "        with open(f'tree/d{d}/sub/f{f}.txt' if f % 2 else f'tree/d{d}/f{f}.txt', 'w') as fh:\n"
      "            fh.write(f'{d}-{f}\\n' * (f * 7 % 300))\n"
      "    os.symlink(f'sub/f1.txt', f'tree/d{d}/link')\n"
      "EOF\n"
      "tar -cf workspace/tree.tar tree");
  ASSERT_OK(r);
  r = sh("set -e; mkdir out; tar -xf tree.tar -C out; find out -type f | wc -l; rm tree.tar");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "1000\n");
  r = host("diff -r --no-dereference tree workspace/out/tree && echo same");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "same\n");
  // And back: the guest removes it all.
  r = sh("rm -rf out; ls");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(fs::is_empty(ws()));
}

// worktree: the guest reads directories without OPENDIR and keeps every
// listing; in .git, which the host writes, it checks a kept listing against
// the directory's mtime when it opens the directory. A host change within
// the timestamp tick of the mtime the guest read would leave it as it is:
// here the host sets a .git directory's mtime ahead (in the tick, as far as
// the VMM can tell), the guest lists it, and the host adds a name and puts
// the mtime back. The guest read that mtime held back, so it reads the
// listing afresh once the real one shows. From a shell whose cwd is that
// directory, where no lookup revalidates it, and with a glob (no stat).
TEST_F(FsTest, WorktreeGitListingsFollowTheHostEvenAtTheSameMtime) {
  const std::string ctl = boot_worktree_with_control();
  const std::string heads = ws(".git/refs/heads");
  fs::create_directories(heads);
  write_file(heads + "/main", "1\n");
  const timespec ahead[2] = {{::time(nullptr) + 15, 123'456'789}, {::time(nullptr) + 15, 123'456'789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, heads.c_str(), ahead, 0), 0);
  auto lister = std::async(std::launch::async, [&] {
    return sh("set -e; cd .git/refs/heads; ls; touch ../../listed; "
              "while [ ! -e /workspace/.git/go ]; do sleep 0.1; done; "
              "for i in $(seq 60); do case \"$(echo *)\" in *from-host*) break;; esac; sleep 1; done; "
              "echo ---; echo *; stat -c %y .");
  });
  for (int i = 0; i < 1200 && !fs::exists(ws(".git/listed")); ++i) ::usleep(100'000);
  ASSERT_TRUE(fs::exists(ws(".git/listed")));
  write_file(heads + "/from-host", "2\n");
  ASSERT_EQ(::utimensat(AT_FDCWD, heads.c_str(), ahead, 0), 0);
  write_file(ws(".git/go"), "");
  const ProcessResult r = lister.get();
  ASSERT_OK(r);
  EXPECT_EQ(r.out.substr(0, r.out.rfind('\n', r.out.size() - 2) + 1), "main\n---\nfrom-host main\n") << r.out;
  // Held back only while recent: then the host's own mtime.
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::gmtime(&ahead[1].tv_sec));
  EXPECT_NE(r.out.find(fmt::format("{}.{:09}", when, ahead[1].tv_nsec)), std::string::npos) << r.out;
  // No OPENDIR after the first (which the guest was told to skip), no RELEASEDIR.
  const auto ops = control_request(ctl, {{"cmd", "fs"}})["shares"][0]["ops"];
  EXPECT_EQ(ops.value("/OPENDIR/count"_json_pointer, 0), 1) << ops.dump();
  EXPECT_FALSE(ops.contains("RELEASEDIR")) << ops.dump();
}

TEST_F(FsTest, RequestsCostNoRegisterExits) {
  // The guest's interrupt handler reads INTERRUPT_STATUS from the register
  // page and its INTERRUPT_ACK ends in the kernel, so a stream of requests
  // and their interrupts reaches the VMM's register file hardly at all.
  const std::string ctl = "/tmp/ksbox-fs-ctl-" + std::to_string(::getpid()) + ".sock";
  boot({.vmm_args = {"--control", ctl}});
  write_file(ws("f"), "data\n");
  ASSERT_OK(sh("for i in $(seq 300); do cat f > /dev/null; done"));
  const auto requests = control_request(ctl, {{"cmd", "fs"}})["shares"][0]["requests"].get<uint64_t>();
  EXPECT_GE(requests, 600u);  // OPEN and RELEASE for each cat, at least
  const auto devices = control_request(ctl, {{"cmd", "devices"}});
  nlohmann::json fs_device;
  for (const auto& d : devices["devices"])
    if (d["type"] == 26) fs_device = d;  // VIRTIO_ID_FS
  ASSERT_TRUE(fs_device.is_object()) << devices.dump();
  EXPECT_EQ(fs_device["register_page"], true) << fs_device.dump();
  EXPECT_LT(fs_device["reads"].get<uint64_t>(), requests / 10) << fs_device.dump();
  EXPECT_LT(fs_device["writes"].get<uint64_t>(), requests / 10) << fs_device.dump();
}

TEST_F(FsTest, RoundTripsArePolledForOnBothSides) {
  // The device thread watches the ring after each request (--fs-poll-us),
  // so the guest need not kick; the guest's sender of a synchronous request
  // watches the used ring for its reply with the interrupt suppressed
  // (guest-image/kernel-patches/0007, virtiofs.poll_us, which the VMM sets
  // to its own window), so no interrupt wakes it. Windows of 10 ms here:
  // the nested harness is slow.
  const std::string ctl = "/tmp/ksbox-fs-ctl-" + std::to_string(::getpid()) + ".sock";
  boot({.vmm_args = {"--control", ctl, "--fs-poll-us", "10000"}});
  for (int i = 0; i < 200; ++i) write_file(ws("f" + std::to_string(i)), "data\n");
  // The interrupts of the share's virtio device, and the share's requests,
  // over 100 cats with the guest polling and 100 with it not.
  const std::string script = R"sh(set -e
for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" != 0x001a ] || dev=${d##*/}; done
irqs() { awk -v d="$dev" '$NF == d { n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print n }' /proc/interrupts; }
files() { i=$1; while [ $i -le $2 ]; do echo f$i; i=$((i + 1)); done; }
p=/sys/module/virtiofs/parameters/poll_us
old=$(cat $p)
echo 10000 > $p; a=$(irqs); cat $(files 0 99) > /dev/null; b=$(irqs)
echo 0 > $p; cat $(files 100 199) > /dev/null; c=$(irqs)
echo $old > $p
echo $((b - a)) $((c - b)) $old)sh";
  const auto before = control_request(ctl, {{"cmd", "fs"}})["shares"][0];
  const auto r = sh(script, "0");
  const auto after = control_request(ctl, {{"cmd", "fs"}})["shares"][0];
  ASSERT_OK(r);
  unsigned polling = 0, not_polling = 0, default_us = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "%u %u %u", &polling, &not_polling, &default_us), 3) << r.out;
  EXPECT_EQ(default_us, 10000u) << "the VMM passes its window to the guest";
  const uint64_t requests = after["requests"].get<uint64_t>() - before["requests"].get<uint64_t>();
  const uint64_t polled = after["polled"].get<uint64_t>() - before["polled"].get<uint64_t>();
  // Each cat: LOOKUP, OPEN, READ, FLUSH and RELEASE.
  EXPECT_GE(requests, 800u);
  EXPECT_GE(polled, requests / 2) << "requests " << requests;
  // Not polling, about one interrupt per synchronous request; polling, one
  // per cat is left: for its RELEASE, which is sent in the background.
  EXPECT_GE(not_polling, 300u) << "interrupts while the guest did not poll; with: " << polling;
  EXPECT_LT(polling * 2, not_polling) << "interrupts while the guest polled";
}

TEST_F(FsTest, CreatesAndUnlinksAskNothingTheyLeaveAlone) {
  // The guest kernel's patches (guest-image/kernel-patches): a create or
  // unlink keeps the directory's mode and owner cached, so the next one's
  // permission check needs no GETATTR; under HANDLE_KILLPRIV_V2 a write does
  // not first ask for security.capability. Stock 6.1 sends one of each per
  // file here.
  const std::string ctl = boot_worktree_with_control();
  ASSERT_OK(sh("mkdir d"));
  // unlink(1), not rm: rm would stat each file, whose times the write changed.
  const Counted c = counted(ctl, "set -e; cd d; for i in $(seq 200); do echo $i > f$i; done; stat -c %Y .; cat f77; "
                                 "for i in $(seq 200); do unlink f$i; done; stat -c %Y .; ls | wc -l");
  ASSERT_OK(c.r);
  EXPECT_EQ(c.added("CREATE"), 200u) << c.readings();
  EXPECT_EQ(c.added("UNLINK"), 200u) << c.readings();
  // The directory's two stats ask (its times changed).
  EXPECT_LE(c.added("GETATTR"), 4u) << c.readings();
  EXPECT_EQ(c.added("GETXATTR"), 0u) << c.readings();
  // Its times are still asked for: the guest saw the last change's mtime.
  struct stat st{};
  ASSERT_EQ(::stat(ws("d").c_str(), &st), 0);
  std::istringstream out(c.r.out);
  std::string after_creates, data, after_unlinks, left;
  out >> after_creates >> data >> after_unlinks >> left;
  EXPECT_EQ(data, "77");
  EXPECT_EQ(after_unlinks, std::to_string(st.st_mtime)) << c.r.out;
  EXPECT_EQ(left, "0");
}

TEST_F(FsTest, ExclusiveCreatesTrustFreshEntries) {
  // guest-image/kernel-patches/0003: mkdir, mkstemp() and other O_EXCL
  // creates trust a dentry within its timeout instead of asking again, so
  // `mkdir -p` of existing directories (tar does one per member) costs no
  // request; stock 6.1 asks once per component. A stale negative dentry
  // still ends in EEXIST: the server creates exclusively itself.
  const std::string ctl = boot_worktree_with_control();
  ASSERT_OK(sh("mkdir -p a/b/c && ls late 2>/dev/null; true"));
  const Counted c = counted(ctl, "set -e; for i in $(seq 100); do mkdir -p a/b/c; done; "
                                 "for i in $(seq 50); do mktemp -p a/b/c > /dev/null; done; ls a/b/c | wc -l");
  ASSERT_OK(c.r);
  EXPECT_EQ(c.r.out, "50\n");
  EXPECT_EQ(c.added("MKDIR"), 0u) << c.readings();
  EXPECT_EQ(c.added("CREATE"), 50u) << c.readings();
  // None for mktemp's new names (kernel-patches/0006); stock 6.1 adds 300
  // for the mkdirs and 50 for the names.
  EXPECT_LE(c.added("LOOKUP"), 10u) << c.readings();
  // The guest last saw `late` missing; made on the host, it is still there
  // for an exclusive create, and left as the host made it.
  write_file(ws("late"), "host\n");
  const auto r = sh("mkdir late");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("File exists"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(ws("late")), "host\n");
}

TEST_F(FsTest, ExclusiveCreatesOfUnknownNamesAskNoLookup) {
  // guest-image/kernel-patches/0006: open(O_CREAT|O_EXCL) of a name the
  // guest has never seen goes straight to CREATE, which the server makes
  // exclusive; the new entry is cached as a lookup would have cached it.
  const std::string ctl = boot_worktree_with_control();
  ASSERT_OK(sh("git init -q r"));
  const Counted c =
      counted(ctl, "set -e; for i in $(seq 40); do f=$(mktemp -p .); stat -c %s \"$f\"; done | sort | uniq -c");
  ASSERT_OK(c.r);
  EXPECT_EQ(c.r.out, "     40 0\n");
  EXPECT_EQ(c.added("CREATE"), 40u) << c.readings();
  // Stock 6.1: one per name before its CREATE; unhashed entries: one per stat.
  EXPECT_LE(c.added("LOOKUP"), 4u) << c.readings();
  // A name only the host made is there for such a create (git's lock file).
  write_file(ws("r/.git/index.lock"), "host\n");
  const auto r = sh("echo x > r/a && git -C r add a");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("index.lock': File exists"), std::string::npos) << sb_->describe(r);
  EXPECT_EQ(read_file(ws("r/.git/index.lock")), "host\n");
  // The refusal cached nothing (stock 6.1 kept the LOOKUP's entry, and
  // under worktree refused on its own until that expired).
  fs::remove(ws("r/.git/index.lock"));
  EXPECT_OK(sh("git -C r add a && git -C r ls-files"));
}

TEST_F(FsTest, ChownAsksNoCapability) {
  // guest-image/kernel-patches/0004: a chown trusts S_NOSEC instead of
  // asking for security.capability first (the server and the host drop
  // capabilities themselves). Stock 6.1 sends a GETXATTR per file chowned,
  // as by an untar or `cp -a` as root.
  const std::string ctl = boot_worktree_with_control();
  ASSERT_OK(sh("mkdir d && cd d && for i in $(seq 100); do echo $i > f$i; done"));
  const Counted c =
      counted(ctl, "set -e; cd d; for i in $(seq 100); do chown 1000:1000 f$i; done; stat -c %u:%g f42", "0");
  ASSERT_OK(c.r);
  EXPECT_EQ(c.r.out, "1000:1000\n");
  EXPECT_EQ(c.added("SETATTR"), 100u) << c.readings();
  EXPECT_EQ(c.added("GETXATTR"), 0u) << c.readings();
  struct stat st{};
  ASSERT_EQ(::stat(ws("d/f42").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(FsTest, WorktreeReadsOfCachedFilesAskNothing) {
  // Under worktree the guest uses files without OPEN, RELEASE or FLUSH
  // (FUSE_NO_OPEN_SUPPORT): a file it has read costs no request to read
  // again; an append still lands at the host's end of file.
  const std::string ctl = boot_worktree_with_control();
  write_file(ws("f"), "data\n");
  fs::create_directories(ws(".git/logs"));
  write_file(ws(".git/logs/HEAD"), "one\n");
  ASSERT_OK(sh("cat f .git/logs/HEAD > /dev/null"));
  const nlohmann::json before = control_request(ctl, {{"cmd", "fs"}})["shares"][0];
  auto r = sh("for i in $(seq 300); do cat f; done | sort | uniq -c");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "    300 data\n");
  const nlohmann::json after = control_request(ctl, {{"cmd", "fs"}})["shares"][0];
  EXPECT_LT(after["requests"].get<uint64_t>() - before["requests"].get<uint64_t>(), 10u)
      << readings(before, after);
  // One OPEN and one FLUSH, answered ENOSYS: the guest's cue to stop asking.
  for (const std::string op : {"OPEN", "FLUSH"})
    EXPECT_EQ(after.value(nlohmann::json::json_pointer("/ops/" + op + "/count"), 0), 1) << after.dump();
  EXPECT_FALSE(after["ops"].contains("RELEASE")) << after.dump();
  std::ofstream(ws(".git/logs/HEAD"), std::ios::app) << "two (host)\n";
  ASSERT_OK(sh("echo three >> .git/logs/HEAD"));
  EXPECT_EQ(read_file(ws(".git/logs/HEAD")), "one\ntwo (host)\nthree\n");
}

TEST_F(FsTest, ThousandsOfFilesWithTheVmmLimitedTo256Fds) {
  // More inodes than the VMM has descriptors: the share keeps a bounded
  // cache of O_PATH fds and re-opens the rest by name.
  boot({.fd_limit = 256});
  auto r = host(
      "set -e; cd workspace; python3 - <<'EOF'\n"
      "import os\n"
      "for d in range(20):\n"
      "    os.makedirs(f'd{d}/sub', exist_ok=True)\n"
      "    for f in range(100):\n"
      "        with open(f'd{d}/sub/f{f}' if f % 2 else f'd{d}/f{f}', 'w') as fh:\n"
      "            fh.write(f'{d}-{f}\\n')\n"
      "EOF\n"
      "git init -q -b main; git add .; git -c user.name=Host -c user.email=host@ksbox commit -qm tree");
  ASSERT_OK(r);
  r = host("grep 'Max open files' /proc/" + std::to_string(sb_->vmm().pid()) + "/limits");
  ASSERT_OK(r);
  EXPECT_NE(r.out.find(" 256 "), std::string::npos) << r.out;
  r = sh("set -e; find /workspace -type f -not -path '*/.git/*' | wc -l; "
         "find /workspace -type f -not -path '*/.git/*' -print0 | xargs -0 stat -c '%s' | wc -l; "
         "cat d7/f40 d19/sub/f99; git status --porcelain | wc -l; "
         "echo more >> d3/f0; mv d5 d5-moved; st=$(git status --porcelain); "
         "echo \"$st\" | grep -c '^ D d5/'; echo \"$st\" | grep -v '^ D d5/'; cat d5-moved/sub/f1");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "2000\n" "2000\n" "7-40\n19-99\n0\n100\n M d3/f0\n?? d5-moved/\n5-1\n");
  EXPECT_EQ(read_file(ws("d3/f0")), "3-0\nmore\n");
  EXPECT_TRUE(fs::exists(ws("d5-moved/sub/f99")));
}

TEST_P(FsCacheTest, OTmpfileThenLinkatNamesTheFile) {
  boot();
  auto r = sh("fs_probe tmpfile /workspace named 'made unnamed'");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(read_file(ws("named")), "made unnamed");
}

TEST_P(FsCacheTest, RenameSemantics) {
  boot();
  write_file(ws("a"), "A");
  write_file(ws("b"), "B");
  fs::create_directories(ws("d1/inner"));
  fs::create_directory(ws("d2"));
  auto r = sh("fs_probe rename2 a b noreplace; fs_probe rename2 a b exchange; fs_probe rename2 a nothere exchange;"
              "mv d1/inner d2/moved && mv b c && echo renamed");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "EEXIST\nok\nENOENT\nrenamed\n");
  EXPECT_EQ(read_file(ws("a")), "B");
  EXPECT_EQ(read_file(ws("c")), "A");
  EXPECT_FALSE(fs::exists(ws("b")));
  EXPECT_TRUE(fs::is_directory(ws("d2/moved")));
  EXPECT_FALSE(fs::exists(ws("d1/inner")));
}

TEST_P(FsCacheTest, FileSemanticsToolsRelyOn) {
  boot();
  write_file(ws("src"), std::string(300000, 'x') + "end");
  // The guest sees what the host file system offers: L1's tmpfs (Linux 6.1)
  // has no user.* xattrs; the unit tests cover them on a file system that has.
  const bool host_xattrs = ::setxattr(ws("src").c_str(), "user.probe", "1", 1, 0) == 0;
  ASSERT_TRUE(host_xattrs || errno == EOPNOTSUPP) << std::strerror(errno);
  if (host_xattrs) {
    ASSERT_EQ(::removexattr(ws("src").c_str(), "user.probe"), 0);
  }
  auto r = sh("set -e; fs_probe mmap m; fs_probe xattr src; fs_probe sparse s; fs_probe copy src dst; "
              "fs_probe locks l; ln src hard; ln -s src soft; readlink soft; stat -c %h src; "
              "truncate -s 5 dst; touch -d '2001-02-03 04:05:06' src; stat -c %Y src");
  ASSERT_OK(r);
  // Under the writeback cache the guest answers SEEK_DATA/SEEK_HOLE itself.
  const std::string sparse = cache_ == "always" ? "ok (no holes)" : "ok";
  EXPECT_EQ(r.out, std::string("ok\n") + (host_xattrs ? "ok" : "unsupported") + "\n" + sparse +
                       "\nok\nok\nsrc\n2\n981173106\n")
      << sb_->describe(r);
  EXPECT_EQ(read_file(ws("dst")), "xxxxx");
  EXPECT_EQ(read_file(ws("hard")).size(), 300003u);
  EXPECT_EQ(fs::read_symlink(ws("soft")), "src");
}

TEST_P(FsCacheTest, ConcurrentWritersLoseNothing) {
  constexpr unsigned kWriters = 8, kMib = 4;
  boot();
  auto r = sh("mkdir cw && fs_probe writers /workspace/cw 8 4");
  ASSERT_OK(r);
  const size_t block = 4096, size = size_t{kMib} << 20;
  for (unsigned w = 0; w < kWriters; ++w) {
    const std::string data = read_file(ws("cw/w" + std::to_string(w)));
    ASSERT_EQ(data.size(), size) << "writer " << w;
    for (size_t i = 0; i < size; ++i)
      ASSERT_EQ(data[i], pattern(w, i)) << "writer " << w << " byte " << i;
  }
  const std::string shared = read_file(ws("cw/shared"));
  ASSERT_EQ(shared.size(), size);
  for (size_t i = 0; i < size; ++i) {
    const auto w = static_cast<unsigned>((i / block) % kWriters);
    ASSERT_EQ(shared[i], pattern(w, i)) << "shared byte " << i;
  }
}

TEST_P(FsCacheTest, SmallWritesAppendsAndPartialPagesOfWriteOnlyFiles) {
  boot();
  write_file(ws("wo"), "xxxxxxxxxx");
  // 1 MiB in 17-byte writes; appends through separate opens; 2 bytes into
  // the middle of a file opened write-only (the writeback cache reads the
  // rest of the page first).
  auto r = sh("set -e; yes 0123456789abcdef | head -c 1048576 > log; stat -c %s log; "
              "for i in 1 2 3; do echo line$i >> app; done; "
              "printf AB | dd of=wo bs=1 seek=4 conv=notrunc 2>/dev/null; cat wo; echo; cat app");
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "1048576\nxxxxABxxxx\nline1\nline2\nline3\n");
  const std::string log = read_file(ws("log"));
  ASSERT_EQ(log.size(), 1048576u);
  EXPECT_EQ(log.substr(0, 17), "0123456789abcdef\n");
  EXPECT_EQ(log.substr(1048576 - 1048576 % 17), "0123456789abcdef");  // cut mid-line
  EXPECT_EQ(read_file(ws("wo")), "xxxxABxxxx");
  EXPECT_EQ(read_file(ws("app")), "line1\nline2\nline3\n");
}

TEST_F(FsTest, OneGibFileWrittenInTheGuestChecksumsOnTheHost) {
  boot();
  // Read back in the guest from the host, not from its page cache.
  auto r = sb_->exec({"sh", "-c", "fs_probe fill big 1024 && sync && echo 3 > /proc/sys/vm/drop_caches && "
                                  "sha256sum big | cut -d' ' -f1"},
                     {"-w", "/workspace"}, {.timeout = std::chrono::seconds(700)});
  ASSERT_OK(r);
  ASSERT_EQ(r.out.substr(0, 3), "ok\n");
  auto h = host("stat -c %s workspace/big; sha256sum workspace/big | cut -d' ' -f1");
  ASSERT_OK(h);
  EXPECT_EQ(h.out, "1073741824\n" + r.out.substr(3));
}

TEST_F(FsTest, EscapesFailAndTheVmmKeepsServing) {
  boot();
  // A secret next to the share, and links to it planted by the host.
  fs::create_directory(sb_->dir() + "/outside");
  write_file(sb_->dir() + "/outside/secret", "TOPSECRET");
  fs::create_symlink(sb_->dir() + "/outside/secret", ws("abs"));
  fs::create_symlink("../outside/secret", ws("rel"));
  auto r = host("mkfifo workspace/fifo && mknod workspace/null c 1 3 && echo planted");
  ASSERT_OK(r);
  write_file(ws("plain"), "plain");
  r = sh("cat abs rel /workspace/../outside/secret ../outside/secret 2>&1; "
         "timeout 3 cat fifo; echo fifo=$?; cat null 2>&1; echo null=$?; "
         "mknod dev c 1 3 2>&1; echo mknod=$?; chmod 4755 plain; chmod 2755 plain; echo chmod=$?; "
         "mkdir sgid && chmod g+s sgid; stat -c %a plain sgid",
         "0");
  EXPECT_EQ(r.out.find("TOPSECRET"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fifo=143"), std::string::npos) << sb_->describe(r);  // killed by timeout
  EXPECT_EQ(r.out.find("null=0"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("mknod=0"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(ws("dev")));
  struct stat st {};
  ASSERT_EQ(::stat(ws("plain").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << std::oct << st.st_mode;
  ASSERT_EQ(::stat(ws("sgid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << std::oct << st.st_mode;
  EXPECT_EQ(read_file(sb_->dir() + "/outside/secret"), "TOPSECRET");
  // Still serving, promptly.
  r = sh("cat plain");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "plain");
}

TEST_F(FsTest, ReadOnlyShareIsEnforcedByTheVmm) {
  boot({.workspace_read_only = true});
  write_file(ws("given"), "given");
  auto r = sh("cat given; touch new 2>&1; echo touch=$?; mount -o remount,rw /workspace; "
              "echo x >> given; echo append=$?; rm given; echo rm=$?",
              "0");
  EXPECT_NE(r.out.find("given"), std::string::npos) << sb_->describe(r);
  for (const char* op : {"touch=0", "append=0", "rm=0"}) EXPECT_EQ(r.out.find(op), std::string::npos) << r.out;
  EXPECT_EQ(read_file(ws("given")), "given");
  EXPECT_FALSE(fs::exists(ws("new")));
}

}  // namespace
}  // namespace ksbox::test
