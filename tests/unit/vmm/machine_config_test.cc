#include "vmm/machine_config.h"

#include <gtest/gtest.h>

#include <string>

#include "test_helpers.h"
#include "vmm/x86/layout.h"

namespace ksbox {
namespace {

MachineConfig sane() {
  MachineConfig c;
  c.kernel = "/boot/vmlinux";
  c.vcpus = 2;
  c.memory_mib = 256;
  return c;
}

TEST(ValidateMachineConfigTest, SaneConfigPasses) {
  EXPECT_NO_THROW(validate(sane(), 4096, 8));
  EXPECT_NO_THROW(validate(sane(), 0, 0));  // host limits unknown
  auto c = sane();
  c.memory_mib = x86::kMinMemoryMiB;
  c.vcpus = 8;
  EXPECT_NO_THROW(validate(c, 4096, 8));
  c.memory_mib = 4096;
  EXPECT_NO_THROW(validate(c, 4096, 8));  // exactly the host's memory
}

TEST(ValidateMachineConfigTest, ZeroVcpus) {
  auto c = sane();
  c.vcpus = 0;
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--vcpus");
}

TEST(ValidateMachineConfigTest, VcpusAboveKvmMax) {
  auto c = sane();
  c.vcpus = 9;
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--vcpus");
  // Unknown KVM limit still caps at the xAPIC limit.
  c.vcpus = x86::kMaxVcpus + 1;
  EXPECT_KSBOX_ERROR(validate(c, 4096, 0), "--vcpus");
  // A KVM that allows more than xAPIC ids still caps at kMaxVcpus.
  EXPECT_KSBOX_ERROR(validate(c, 4096, 1024), "--vcpus");
  c.vcpus = x86::kMaxVcpus;
  EXPECT_NO_THROW(validate(c, 4096, 1024));
}

TEST(ValidateMachineConfigTest, MemoryBelowMinimum) {
  auto c = sane();
  c.memory_mib = x86::kMinMemoryMiB - 1;
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--memory");
  c.memory_mib = 0;
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--memory");
}

TEST(ValidateMachineConfigTest, MemoryAboveHost) {
  auto c = sane();
  c.memory_mib = 4097;
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--memory");
  EXPECT_NO_THROW(validate(c, 0, 8));  // host size unknown
}

TEST(ValidateMachineConfigTest, AbsurdMemory) {
  auto c = sane();
  c.memory_mib = UINT64_MAX;
  EXPECT_KSBOX_ERROR(validate(c, 0, 8), "--memory");
}

TEST(ValidateMachineConfigTest, EmptyKernel) {
  auto c = sane();
  c.kernel.clear();
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--kernel");
}

TEST(ValidateMachineConfigTest, VsockIsOffByDefaultWithCid3) {
  const MachineConfig c;
  EXPECT_TRUE(c.vsock_path.empty());
  EXPECT_EQ(c.guest_cid, 3u);
  EXPECT_NO_THROW(validate(sane(), 4096, 8));
}

TEST(ValidateMachineConfigTest, ReservedGuestCids) {
  auto c = sane();
  c.vsock_path = "/tmp/ksbox-vsock.sock";
  for (uint32_t cid : {0u, 1u, 2u, 0xffffffffu}) {
    c.guest_cid = cid;
    EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--cid");
  }
  for (uint32_t cid : {3u, 1024u, 0xfffffffeu}) {
    c.guest_cid = cid;
    EXPECT_NO_THROW(validate(c, 4096, 8));
  }
}

TEST(ValidateMachineConfigTest, VsockPathMustFitASocketAddress) {
  auto c = sane();
  c.vsock_path = "/" + std::string(106, 'a');  // 107 bytes + NUL = sizeof(sun_path)
  EXPECT_NO_THROW(validate(c, 4096, 8));
  c.vsock_path += "a";
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "--vsock");
}

TEST(ParseShareTest, TagDirAndMode) {
  EXPECT_EQ(parse_share("workspace=/srv/project"), (ShareConfig{"workspace", "/srv/project", false, ""}));
  EXPECT_EQ(parse_share("ref=/srv/ref:ro"), (ShareConfig{"ref", "/srv/ref", true, ""}));
  EXPECT_EQ(parse_share("x=/a:ro:rw"), (ShareConfig{"x", "/a:ro", false, ""}));  // a name ending in ":ro"
  EXPECT_EQ(parse_share("x=/a=b"), (ShareConfig{"x", "/a=b", false, ""}));     // the first '=' splits
}

TEST(ParseShareTest, CachePolicyOfItsOwn) {
  EXPECT_EQ(parse_share("workspace=/w,cache=worktree"), (ShareConfig{"workspace", "/w", false, "worktree"}));
  EXPECT_EQ(parse_share("ref=/r:ro,cache=always"), (ShareConfig{"ref", "/r", true, "always"}));
  // The last ",cache=" starts the options: earlier commas belong to the name.
  EXPECT_EQ(parse_share("x=/a,b,cache=never"), (ShareConfig{"x", "/a,b", false, "never"}));
  EXPECT_KSBOX_ERROR(parse_share("x=/a,cache="), "valid values are never, auto, always, worktree");
  EXPECT_KSBOX_ERROR(parse_share("x=/a,cache=sometimes"), "cache policy 'sometimes'");
  EXPECT_KSBOX_ERROR(parse_share("x=,cache=auto"), "no host directory");
}

TEST(ParseShareTest, BadSyntaxAndTags) {
  EXPECT_KSBOX_ERROR(parse_share("/srv/project"), "TAG=HOSTDIR");
  EXPECT_KSBOX_ERROR(parse_share("workspace="), "no host directory");
  EXPECT_KSBOX_ERROR(parse_share("workspace=:ro"), "no host directory");
  EXPECT_KSBOX_ERROR(parse_share("=/srv"), "1 to 36");
  EXPECT_KSBOX_ERROR(parse_share(std::string(37, 't') + "=/srv"), "1 to 36");
  EXPECT_NO_THROW(parse_share(std::string(36, 't') + "=/srv"));
  EXPECT_KSBOX_ERROR(parse_share("a\tb=/srv"), "control character");
}

TEST(ParseDiskTest, PathModeAndSerial) {
  EXPECT_EQ(parse_disk("/img/root.raw"), (DiskConfig{"/img/root.raw", false, ""}));
  EXPECT_EQ(parse_disk("/img/base.raw:ro"), (DiskConfig{"/img/base.raw", true, ""}));
  EXPECT_EQ(parse_disk("/img/a.raw:ro,serial=base-1"), (DiskConfig{"/img/a.raw", true, "base-1"}));
  EXPECT_EQ(parse_disk("/img/a,b.raw,serial=x"), (DiskConfig{"/img/a,b.raw", false, "x"}));  // the last ",serial=" splits
  EXPECT_EQ(parse_disk("/img/x:ro:rw"), (DiskConfig{"/img/x:ro", false, ""}));
}

TEST(ParseDiskTest, BadSyntaxAndSerials) {
  EXPECT_KSBOX_ERROR(parse_disk(""), "no image path");
  EXPECT_KSBOX_ERROR(parse_disk(":ro"), "no image path");
  EXPECT_KSBOX_ERROR(parse_disk("/img,serial="), "empty serial");
  EXPECT_KSBOX_ERROR(parse_disk("/img,serial=" + std::string(21, 's')), "at most 20");
  EXPECT_NO_THROW(parse_disk("/img,serial=" + std::string(20, 's')));
  EXPECT_KSBOX_ERROR(parse_disk("/img,serial=a b"), "printable ASCII");
}

TEST(ValidateMachineConfigTest, DisksMustBeDistinctRegularFilesWithinTheSlots) {
  auto c = sane();
  c.disks = {{"/nonexistent.raw", false, ""}};
  EXPECT_KSBOX_ERROR(validate(c, 0, 0), "/nonexistent.raw");
  c.disks = {{"/tmp", false, ""}};
  EXPECT_KSBOX_ERROR(validate(c, 0, 0), "not a regular file");
  c.disks = {{"/proc/self/exe", false, ""}, {"/proc/self/exe", true, ""}};
  EXPECT_KSBOX_ERROR(validate(c, 0, 0), "twice");
  c.disks.assign(kMaxDisks + 1, {"/proc/self/exe", false, ""});
  EXPECT_KSBOX_ERROR(validate(c, 0, 0), "at most 4");
  c.disks = {{"/proc/self/exe", false, ""}};
  EXPECT_NO_THROW(validate(c, 0, 0));
  c.vsock_path = "/tmp/v.sock";
  EXPECT_EQ(virtio_slots_needed(c), 4u);  // rng, vsock, one disk, balloon
  c.balloon = false;
  EXPECT_EQ(virtio_slots_needed(c), 3u);
}

TEST(ValidateMachineConfigTest, EveryDeviceAtOnceFitsTheSlots) {
  auto c = sane();
  c.vsock_path = "/tmp/v.sock";
  c.network.mode = "user";
  c.shares.clear();
  for (const char* tag : {"a", "b", "c", "d"}) c.shares.push_back({tag, "/tmp", false});
  c.disks.clear();
  for (const char* path : {"/proc/self/exe", "/proc/self/cmdline", "/proc/self/environ", "/proc/self/stat"})
    c.disks.push_back({path, true, ""});
  EXPECT_EQ(virtio_slots_needed(c), 12u);  // rng, vsock, 4 shares, 4 disks, net, balloon
  EXPECT_LE(virtio_slots_needed(c), kVirtioSlots);
  EXPECT_NO_THROW(validate(c, 0, 0));
}

TEST(ValidateMachineConfigTest, SharesMustBeDistinctExistingDirectories) {
  auto c = sane();
  c.shares = {{"workspace", "/", false}, {"ro", "/tmp", true}};
  EXPECT_NO_THROW(validate(c, 4096, 8));
  c.shares.push_back({"workspace", "/tmp", false});
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "used twice");
  c.shares = {{"w", "/nonexistent-ksbox-dir", false}};
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "No such file");
  c.shares = {{"w", "/proc/self/status", false}};
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "not a directory");
  c.shares.assign(kMaxShares + 1, {"w", "/", false});
  for (size_t i = 0; i < c.shares.size(); ++i) c.shares[i].tag = "w" + std::to_string(i);
  EXPECT_KSBOX_ERROR(validate(c, 4096, 8), "at most");
}

}  // namespace
}  // namespace ksbox
