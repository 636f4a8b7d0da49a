// The sandbox's root disk on the host side: the base image's identity (its
// ext4 UUID, compared with what dumpe2fs says), the sparse layer made with
// the real mkfs.ext4, the VMM arguments, and the decisions of
// plan_root_disk (initramfs or root disk, a new layer, a changed base).
#include "cli/root_disk.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "cli/sandbox_commands.h"
#include "cli/tool_process.h"
#include "vmm/atomic_file.h"
#include "tests/unit/test_helpers.h"

namespace ksbox::cli {
namespace {

using ksbox::testing::TempDir;

constexpr uint64_t kMiB = uint64_t{1} << 20;

fs::path mkfs() {
  std::string why;
  const auto m = find_mkfs_ext4(&why);
  if (!m) throw Error(why);
  return *m;
}

uint64_t allocated(const fs::path& f) {
  struct stat st{};
  return ::stat(f.c_str(), &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0;
}

class RootDiskPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(guest_);
    fs::create_directories(p_.dir);
    // A stand-in base: any ext4 image has what plan_root_disk reads.
    make_layer(mkfs(), guest_ / kGuestRootfsFile, 64 * kMiB);
    image_ = {guest_ / kGuestKernelFile, guest_ / kGuestInitrdFile, guest_ / kGuestRootfsFile, guest_};
    rec_.name = "demo";
  }
  RootDiskPlan plan(ImageKind kind = ImageKind::kAuto, std::optional<uint64_t> size = std::nullopt) {
    return plan_root_disk(p_, image_, {kind, size.value_or(300 * kMiB), size.has_value()}, rec_);
  }

  TempDir dir_;
  fs::path guest_ = dir_.path() / "guest";
  SandboxPaths p_{dir_.path() / "state" / "demo"};
  GuestImage image_;
  SandboxRecord rec_;
};

TEST(RootDisk, BaseIdentityIsTheExt4Uuid) {
  TempDir dir;
  const fs::path img = dir.path() / "base.ext4";
  make_layer(mkfs(), img, 64 * kMiB);
  std::string why;
  const auto id = read_base_image_id(img, &why);
  ASSERT_TRUE(id) << why;
  EXPECT_EQ(id->size, 64 * kMiB);
  const fs::path dumpe2fs = mkfs().parent_path() / "dumpe2fs";
  const ToolOutput out = run_tool_capture(dumpe2fs, {"-h", img.string()});
  ASSERT_EQ(out.status, 0);
  EXPECT_NE(out.out.find("Filesystem UUID:          " + id->uuid + "\n"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("Filesystem volume name:   ksbox-layer\n"), std::string::npos) << out.out;
  EXPECT_EQ(id->fingerprint.size(), 16u);
  // A new mkfs, a new identity.
  make_layer(mkfs(), img, 64 * kMiB);
  EXPECT_NE(read_base_image_id(img, &why)->uuid, id->uuid);
  EXPECT_NE(read_base_image_id(img, &why)->fingerprint, id->fingerprint);
}

TEST(RootDisk, OtherContentUnderTheSameUuidIsAnotherBase) {
  // What a reproducible build with a fixed UUID gives for other content.
  TempDir dir;
  const fs::path a = dir.path() / "a.ext4", b = dir.path() / "b.ext4";
  fs::create_directories(dir.path() / "content");
  for (const auto& [img, file] : {std::pair{a, "one"}, std::pair{b, "two"}}) {
    write_file_atomic(dir.path() / "content" / file, std::string(100'000, 'x'));
    const int st = run_tool(mkfs(), {"-q", "-F", "-U", "11111111-2222-3333-4444-555555555555", "-E",
                                     "hash_seed=11111111-2222-3333-4444-555555555555", "-d",
                                     (dir.path() / "content").string(), img.string(), "16M"},
                            /*stdout_to_stderr=*/true);
    ASSERT_EQ(st, 0);
  }
  std::string why;
  const auto ia = read_base_image_id(a, &why), ib = read_base_image_id(b, &why);
  ASSERT_TRUE(ia && ib) << why;
  EXPECT_EQ(ia->uuid, ib->uuid);
  EXPECT_EQ(ia->size, ib->size);
  EXPECT_NE(ia->fingerprint, ib->fingerprint);
}

TEST(RootDisk, NotExt4IsRefused) {
  TempDir dir;
  write_file_atomic(dir.path() / "x", std::string(4096, '\0'));
  write_file_atomic(dir.path() / "short", "abc");
  std::string why;
  EXPECT_FALSE(read_base_image_id(dir.path() / "x", &why));
  EXPECT_NE(why.find("is not an ext4 image"), std::string::npos) << why;
  EXPECT_FALSE(read_base_image_id(dir.path() / "short", &why));
  EXPECT_FALSE(read_base_image_id(dir.path() / "missing", &why));
  EXPECT_NE(why.find("cannot read"), std::string::npos) << why;
}

TEST(RootDisk, LayerIsSparse) {
  TempDir dir;
  const fs::path layer = dir.path() / "layer.ext4";
  make_layer(mkfs(), layer, uint64_t{8} << 30);
  EXPECT_EQ(fs::file_size(layer), uint64_t{8} << 30);
  EXPECT_LT(allocated(layer), 32 * kMiB) << "an 8G layer should start nearly empty";
  EXPECT_FALSE(fs::exists(dir.path() / "layer.ext4.new"));
}

TEST(RootDisk, MkfsFailureLeavesNoLayer) {
  TempDir dir;
  const fs::path layer = dir.path() / "layer.ext4";
  EXPECT_KSBOX_ERROR(make_layer("/bin/false", layer, 64 * kMiB), "could not make the sandbox's layer");
  EXPECT_FALSE(fs::exists(layer));
  EXPECT_FALSE(fs::exists(dir.path() / "layer.ext4.new"));
}

TEST(RootDisk, MkfsIsFoundOutsideTheUsersPath) {
  std::string why;
  const auto m = find_mkfs_ext4("/nonexistent", &why);
  ASSERT_TRUE(m) << why;
  EXPECT_TRUE(m->string() == "/usr/sbin/mkfs.ext4" || m->string() == "/sbin/mkfs.ext4") << *m;
}

TEST(RootDisk, VmmArgumentsNameTheDisksBySerial) {
  EXPECT_EQ(root_disk_vmm_args("/g/rootfs.ext4", "/s/layer.ext4"),
            (std::vector<std::string>{"--disk", "/g/rootfs.ext4:ro,serial=ksbox-root", "--disk",
                                      "/s/layer.ext4,serial=ksbox-layer", "--cmdline",
                                      "ksbox.root=serial:ksbox-root ksbox.overlay=serial:ksbox-layer"}));
}

TEST_F(RootDiskPlanTest, AutoWithoutTheImageBootsTheInitramfsWithANote) {
  image_.rootfs.reset();
  const auto r = plan();
  EXPECT_TRUE(r.vmm_args.empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("no root file system image"), std::string::npos) << r.notes[0];
  EXPECT_EQ(rec_.image, "initramfs");
  EXPECT_FALSE(fs::exists(p_.layer()));
}

TEST_F(RootDiskPlanTest, InitramfsOnRequestMakesNoLayer) {
  const auto r = plan(ImageKind::kInitramfs);
  EXPECT_TRUE(r.vmm_args.empty());
  EXPECT_TRUE(r.notes.empty());
  EXPECT_EQ(rec_.image, "initramfs");
  EXPECT_FALSE(fs::exists(p_.layer()));
  EXPECT_FALSE(rec_.layer);
}

TEST_F(RootDiskPlanTest, RootfsOnRequestWithoutTheImageIsExitThree) {
  image_.rootfs.reset();
  try {
    plan(ImageKind::kRootfs);
    ADD_FAILURE() << "booted without the image";
  } catch (const RootDiskError& e) {
    EXPECT_EQ(e.exit_status(), kRunNoGuestImage);
    EXPECT_NE(std::string(e.what()).find("rootfs.ext4 is missing"), std::string::npos) << e.what();
  }
}

TEST_F(RootDiskPlanTest, FirstBootMakesTheLayerAndRecordsTheBase) {
  const auto r = plan();
  EXPECT_TRUE(r.notes.empty());
  EXPECT_EQ(r.vmm_args, root_disk_vmm_args(guest_ / kGuestRootfsFile, p_.layer()));
  EXPECT_EQ(rec_.image, "rootfs");
  ASSERT_TRUE(rec_.layer);
  EXPECT_EQ(rec_.layer->size, 300 * kMiB);
  EXPECT_EQ(fs::file_size(p_.layer()), 300 * kMiB);
  std::string why;
  EXPECT_EQ(rec_.layer->base_uuid, read_base_image_id(guest_ / kGuestRootfsFile, &why)->uuid);
  EXPECT_EQ(rec_.layer->base_size, 64 * kMiB);
  EXPECT_EQ(rec_.layer->base_fingerprint, read_base_image_id(guest_ / kGuestRootfsFile, &why)->fingerprint);
  // The record keeps it.
  rec_.project = "/p";
  rec_.workspace_mode = "clone";
  write_record(p_, rec_);
  const SandboxRecord back = read_record(p_);
  ASSERT_TRUE(back.layer);
  EXPECT_EQ(back.layer->base_uuid, rec_.layer->base_uuid);
  EXPECT_EQ(back.layer->base_fingerprint, rec_.layer->base_fingerprint);
  EXPECT_EQ(back.layer->base_path, guest_ / kGuestRootfsFile);
  EXPECT_EQ(back.image, "rootfs");
}

TEST_F(RootDiskPlanTest, LaterBootsKeepTheLayer) {
  plan();
  struct stat before{}, after{};
  ::stat(p_.layer().c_str(), &before);
  auto r = plan();
  EXPECT_TRUE(r.notes.empty());
  ::stat(p_.layer().c_str(), &after);
  EXPECT_EQ(before.st_ino, after.st_ino);
  // Another size applies to a new layer only.
  r = plan(ImageKind::kAuto, 512 * kMiB);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("the layer keeps its size 300M"), std::string::npos) << r.notes[0];
  EXPECT_EQ(fs::file_size(p_.layer()), 300 * kMiB);
  // The initramfs leaves it alone.
  r = plan(ImageKind::kInitramfs);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("kept, unused"), std::string::npos) << r.notes[0];
  EXPECT_TRUE(fs::exists(p_.layer()));
}

TEST_F(RootDiskPlanTest, AChangedBaseIsRefusedWithExitSeven) {
  plan();
  make_layer(mkfs(), guest_ / kGuestRootfsFile, 64 * kMiB);  // rebuilt: a new UUID
  try {
    plan();
    ADD_FAILURE() << "booted a layer over another base";
  } catch (const RootDiskError& e) {
    EXPECT_EQ(e.exit_status(), kRunImageChanged);
    EXPECT_NE(std::string(e.what()).find("the root image changed under sandbox demo's layer"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("`ksbox run --fresh`"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(p_.layer()));  // nothing discarded
}

TEST_F(RootDiskPlanTest, ALostLayerIsMadeAgainAndAnUnrecordedOneAdopted) {
  plan();
  fs::remove(p_.layer());
  auto r = plan();
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("is missing: making a new layer"), std::string::npos) << r.notes[0];
  EXPECT_TRUE(fs::exists(p_.layer()));
  // A run that made the layer but never wrote the record.
  rec_.layer.reset();
  r = plan();
  EXPECT_TRUE(r.notes.empty());
  ASSERT_TRUE(rec_.layer);
  EXPECT_EQ(rec_.layer->size, 300 * kMiB);
}

}  // namespace
}  // namespace ksbox::cli
