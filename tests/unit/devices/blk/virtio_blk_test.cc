// VirtioBlk against a fake driver, with both I/O engines: data reaches the
// image file, several requests are in flight at once, refusals and host
// errors fail one request each and the device keeps serving.
#include "devices/blk/virtio_blk.h"

#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/devices/virtio/fake_driver.h"
#include "tests/unit/test_helpers.h"
#include "vmm/error.h"

namespace ksbox::devices::blk {
namespace {

using virtio::testing::CountingInterrupt;
using virtio::testing::FakeDriver;

constexpr uint16_t kSize = 16;
constexpr uint64_t kReqBase = 0x4000;  // request i: header at +0, status at +16, data in the high region
constexpr uint64_t kDataBase = virtio::testing::kHighStart;
constexpr uint64_t kImageBytes = 1 << 20;

struct TempImage {
  TempImage() {
    char t[] = "/tmp/ksbox-blk-test-XXXXXX";
    UniqueFd fd(::mkstemp(t));
    path = t;
    EXPECT_EQ(::ftruncate(fd.get(), kImageBytes), 0);
  }
  ~TempImage() { ::unlink(path.c_str()); }
  std::vector<uint8_t> read(uint64_t off, size_t n) const {
    std::vector<uint8_t> b(n);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_EQ(::pread(fd.get(), b.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
    return b;
  }
  void write(uint64_t off, const std::vector<uint8_t>& b) const {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    EXPECT_EQ(::pwrite(fd.get(), b.data(), b.size(), static_cast<off_t>(off)), static_cast<ssize_t>(b.size()));
  }
  uint64_t allocated_blocks() const {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return static_cast<uint64_t>(st.st_blocks);
  }
  std::string path;
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 9));
  return b;
}

class VirtioBlkTest : public ::testing::TestWithParam<io::IoEngineKind> {
 protected:
  void SetUp() override { std::signal(SIGXFSZ, SIG_IGN); }
  void TearDown() override {
    if (dev_) dev_->reset();
  }

  // Makes the device (read-only or not) and activates it with all features.
  void start(bool read_only = false, std::string serial = "", uint64_t features = ~0ull) {
    std::unique_ptr<io::AsyncIo> engine;
    try {
      engine = io::make_async_io(GetParam(), VirtioBlk::kEngineCapacity, "test");
    } catch (const Error& e) {
      GTEST_SKIP() << "io_uring is not usable here: " << e.what();
    }
    dev_ = std::make_unique<VirtioBlk>(DiskImage(image_.path, read_only, std::move(serial)), std::move(engine));
    ASSERT_TRUE(queue_.set_size(kSize));
    ASSERT_TRUE(queue_.set_desc_table(GuestAddress(virtio::testing::kDescAddr)));
    ASSERT_TRUE(queue_.set_avail_ring(GuestAddress(virtio::testing::kAvailAddr)));
    ASSERT_TRUE(queue_.set_used_ring(GuestAddress(virtio::testing::kUsedAddr)));
    ASSERT_EQ(queue_.set_ready(mem_, true), virtio::QueueConfigError::kOk);
    ASSERT_TRUE(dev_->activate({dev_->device_features() & features, std::span(&queue_, 1), &mem_, &irq_}));
  }

  // Request slot `i` (descriptors 3i..3i+2): header, data (if any), status.
  void submit(uint16_t i, uint32_t type, uint64_t sector, uint64_t data_addr, uint32_t data_len, bool publish = true) {
    const uint64_t hdr = kReqBase + 32ull * i;
    ASSERT_TRUE(mem_.write_obj(GuestAddress(hdr), virtio_blk_outhdr{type, 0, sector}));
    ASSERT_TRUE(mem_.write_obj<uint8_t>(GuestAddress(hdr + 16), 0xff));
    const auto d = static_cast<uint16_t>(3 * i);
    const bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    if (data_len) {
      driver_.desc(d, hdr, 16, VRING_DESC_F_NEXT, d + 1);
      driver_.desc(d + 1, data_addr, data_len, VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0), d + 2);
    } else {
      driver_.desc(d, hdr, 16, VRING_DESC_F_NEXT, d + 2);
    }
    driver_.desc(d + 2, hdr + 16, 1, VRING_DESC_F_WRITE);
    if (publish) driver_.publish(d);
  }
  uint8_t status(uint16_t i) { return mem_.read_obj<uint8_t>(GuestAddress(kReqBase + 32ull * i + 16)).value_or(0xee); }
  void put(uint64_t addr, const std::vector<uint8_t>& b) { ASSERT_TRUE(mem_.write_bytes(GuestAddress(addr), b)); }
  std::vector<uint8_t> get(uint64_t addr, size_t n) {
    auto s = mem_.slice(GuestAddress(addr), n);
    return s ? std::vector<uint8_t>(s->begin(), s->end()) : std::vector<uint8_t>{};
  }
  // Kicks the queue and waits until `used` requests have completed.
  void run(uint16_t used) {
    dev_->process_queue(0);
    for (int spins = 0; driver_.used_idx() < used && spins < 500; ++spins) {
      ASSERT_GE(dev_->host_event_fd(), 0) << "the sync engine completes inside process_queue()";
      pollfd p{dev_->host_event_fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
      dev_->on_host_event();
    }
    ASSERT_EQ(driver_.used_idx(), used);
  }

  GuestMemory mem_ = virtio::testing::make_two_region_memory();
  virtio::Queue queue_{kSize};
  FakeDriver driver_{mem_, kSize};
  CountingInterrupt irq_;
  TempImage image_;
  std::unique_ptr<VirtioBlk> dev_;
};

TEST_P(VirtioBlkTest, AnnouncesABlockDeviceWithItsCapacityAndLimits) {
  start();
  EXPECT_EQ(dev_->device_type(), uint32_t{VIRTIO_ID_BLOCK});
  const uint64_t f = dev_->device_features();
  for (unsigned bit : {VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_F_SEG_MAX,
                       VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_CONFIG_WCE})
    EXPECT_TRUE(f & (1ull << bit)) << bit;
  EXPECT_FALSE(f & (1ull << VIRTIO_BLK_F_RO));
  virtio_blk_config c{};
  dev_->read_config(0, {reinterpret_cast<uint8_t*>(&c), sizeof c});
  EXPECT_EQ(c.capacity, kImageBytes / 512);
  EXPECT_EQ(c.seg_max, VirtioBlk::kSegMax);
  EXPECT_EQ(c.blk_size, 512u);
  EXPECT_EQ(c.max_discard_seg, VirtioBlk::kMaxRanges);
  EXPECT_EQ(c.wce, 1);
  // Only the writeback byte is writable.
  const uint8_t zero = 0;
  dev_->write_config(offsetof(virtio_blk_config, wce), {&zero, 1});
  dev_->write_config(0, {&zero, 1});
  dev_->read_config(0, {reinterpret_cast<uint8_t*>(&c), sizeof c});
  EXPECT_EQ(c.wce, 0);
  EXPECT_EQ(c.capacity, kImageBytes / 512);
}

TEST_P(VirtioBlkTest, WritesReachTheImageAndReadsComeBack) {
  start();
  const auto data = pattern(4096, 1);
  put(kDataBase, data);
  submit(0, VIRTIO_BLK_T_OUT, 8, kDataBase, 4096);
  run(1);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(driver_.used_elem(0).len, 1u);
  EXPECT_EQ(image_.read(4096, 4096), data);
  submit(1, VIRTIO_BLK_T_IN, 9, kDataBase + 8192, 1024);
  run(2);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(driver_.used_elem(1).len, 1025u);
  EXPECT_EQ(get(kDataBase + 8192, 1024), std::vector<uint8_t>(data.begin() + 512, data.begin() + 1536));
  EXPECT_GE(irq_.used, 1);
}

TEST_P(VirtioBlkTest, ManyRequestsInFlightAtOnce) {
  start();
  constexpr uint16_t kN = 5;
  for (uint16_t i = 0; i < kN; ++i) {
    put(kDataBase + 4096ull * i, pattern(4096, static_cast<uint8_t>(i + 10)));
    submit(i, VIRTIO_BLK_T_OUT, 64ull * i, kDataBase + 4096ull * i, 4096);
  }
  run(kN);
  for (uint16_t i = 0; i < kN; ++i) {
    EXPECT_EQ(status(i), VIRTIO_BLK_S_OK) << i;
    EXPECT_EQ(image_.read(64ull * 512 * i, 4096), pattern(4096, static_cast<uint8_t>(i + 10))) << i;
  }
  EXPECT_EQ(dev_->stats().writes, kN);
}

TEST_P(VirtioBlkTest, FlushAndGetId) {
  start(false, "disk-serial-0123");
  submit(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
  put(kDataBase, std::vector<uint8_t>(32, 0xaa));
  submit(1, VIRTIO_BLK_T_GET_ID, 0, kDataBase, 32);
  run(2);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  auto id = get(kDataBase, 32);
  EXPECT_EQ(std::string(id.begin(), id.begin() + 16), "disk-serial-0123");
  EXPECT_EQ(std::vector<uint8_t>(id.begin() + 16, id.begin() + 20), std::vector<uint8_t>(4, 0));  // NUL-padded
  EXPECT_EQ(std::vector<uint8_t>(id.begin() + 20, id.end()), std::vector<uint8_t>(12, 0xaa));      // untouched
}

TEST_P(VirtioBlkTest, ReadOnlyDiskRefusesWritesAndKeepsTheImage) {
  image_.write(0, pattern(4096, 3));
  start(true);
  EXPECT_TRUE(dev_->device_features() & (1ull << VIRTIO_BLK_F_RO));
  EXPECT_FALSE(dev_->device_features() & (1ull << VIRTIO_BLK_F_DISCARD));
  put(kDataBase, pattern(4096, 4));
  submit(0, VIRTIO_BLK_T_OUT, 0, kDataBase, 4096);
  submit(1, VIRTIO_BLK_T_IN, 0, kDataBase + 4096, 4096);
  run(2);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(image_.read(0, 4096), pattern(4096, 3));
  EXPECT_EQ(get(kDataBase + 4096, 4096), pattern(4096, 3));
  EXPECT_EQ(dev_->parse_stats().get(ParseError::kReadOnly), 1u);
}

TEST_P(VirtioBlkTest, MalformedRequestsFailAloneAndAreCounted) {
  start();
  submit(0, VIRTIO_BLK_T_IN, kImageBytes / 512, kDataBase, 512);  // past the end
  submit(1, VIRTIO_BLK_T_OUT, 0, kDataBase, 100);                  // not whole sectors
  submit(2, 77, 0, 0, 0);                                          // unknown type
  // No status byte at all: header only.
  ASSERT_TRUE(mem_.write_obj(GuestAddress(kReqBase + 96), virtio_blk_outhdr{VIRTIO_BLK_T_IN, 0, 0}));
  driver_.desc(9, kReqBase + 96, 16, 0);
  driver_.publish(9);
  put(kDataBase + 4096, pattern(512, 5));
  submit(4, VIRTIO_BLK_T_OUT, 1, kDataBase + 4096, 512);  // and a good one after them
  run(5);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(status(2), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(driver_.used_elem(3).id, 9u);
  EXPECT_EQ(driver_.used_elem(3).len, 0u);
  EXPECT_EQ(status(4), VIRTIO_BLK_S_OK);
  EXPECT_EQ(image_.read(512, 512), pattern(512, 5));
  EXPECT_EQ(dev_->parse_stats().total(), 4u);
  EXPECT_EQ(dev_->stats().refused, 4u);
  EXPECT_EQ(irq_.needs_reset, 0);
}

TEST_P(VirtioBlkTest, HostWriteErrorsBecomeIoErrors) {
  start();
  // The host refuses to grow the file past 64 KiB (EFBIG): like a full disk.
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  put(kDataBase, pattern(4096, 6));
  submit(0, VIRTIO_BLK_T_OUT, 1024, kDataBase, 4096);  // at 512 KiB
  submit(1, VIRTIO_BLK_T_OUT, 0, kDataBase, 4096);     // inside the limit
  run(2);
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(dev_->stats().io_errors, 1u);
  EXPECT_EQ(image_.read(0, 4096), pattern(4096, 6));
}

TEST_P(VirtioBlkTest, DiscardPunchesAHoleAndWriteZeroesZeroes) {
  start();
  image_.write(0, pattern(64 * 1024, 7));
  ::sync();
  const uint64_t before = image_.allocated_blocks();
  // Discard 32 KiB at 16 KiB; write-zeroes 1 KiB at 4 KiB (no unmap) and
  // 1 KiB at 8 KiB (unmap allowed).
  ASSERT_TRUE(mem_.write_obj(GuestAddress(kDataBase), virtio_blk_discard_write_zeroes{32, 64, 0}));
  ASSERT_TRUE(mem_.write_obj(GuestAddress(kDataBase + 16), virtio_blk_discard_write_zeroes{8, 2, 0}));
  ASSERT_TRUE(mem_.write_obj(GuestAddress(kDataBase + 32),
                             virtio_blk_discard_write_zeroes{16, 2, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP}));
  submit(0, VIRTIO_BLK_T_DISCARD, 0, kDataBase, 16);
  submit(1, VIRTIO_BLK_T_WRITE_ZEROES, 0, kDataBase + 16, 32);
  run(2);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(image_.read(16 * 1024, 32 * 1024), std::vector<uint8_t>(32 * 1024, 0));
  EXPECT_EQ(image_.read(4096, 1024), std::vector<uint8_t>(1024, 0));
  EXPECT_EQ(image_.read(8192, 1024), std::vector<uint8_t>(1024, 0));
  const auto p = pattern(64 * 1024, 7);
  EXPECT_EQ(image_.read(0, 4096), std::vector<uint8_t>(p.begin(), p.begin() + 4096));
  EXPECT_EQ(image_.read(48 * 1024, 16 * 1024), std::vector<uint8_t>(p.begin() + 48 * 1024, p.end()));
  EXPECT_LT(image_.allocated_blocks(), before) << "the discard freed no space";
}

TEST_P(VirtioBlkTest, ResetWithRequestsInFlightWaitsForThem) {
  start();
  for (uint16_t i = 0; i < 5; ++i) submit(i, VIRTIO_BLK_T_IN, 8ull * i, kDataBase + 4096ull * i, 4096);
  dev_->process_queue(0);
  dev_->reset();
  // Nothing left in flight: later wakeups and kicks are ignored.
  dev_->on_host_event();
  dev_->process_queue(0);
  SUCCEED();
}

TEST_P(VirtioBlkTest, WithoutFlushNegotiatedEveryWriteIsDurableAndFlushIsUnsupported) {
  start(false, "", ~(1ull << VIRTIO_BLK_F_FLUSH));
  put(kDataBase, pattern(512, 8));
  submit(0, VIRTIO_BLK_T_OUT, 0, kDataBase, 512);
  submit(1, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
  run(2);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_UNSUPP);
}

INSTANTIATE_TEST_SUITE_P(Engines, VirtioBlkTest, ::testing::Values(io::IoEngineKind::kSync, io::IoEngineKind::kIoUring),
                         [](const auto& p) { return p.param == io::IoEngineKind::kSync ? "Sync" : "IoUring"; });

TEST(DiskImage, RefusesWhatIsNotAUsableImage) {
  EXPECT_KSBOX_ERROR(DiskImage("/nonexistent/image", false), "cannot open");
  EXPECT_KSBOX_ERROR(DiskImage("/tmp", true), "not a regular file");
  TempImage img;
  EXPECT_KSBOX_ERROR(DiskImage(img.path, false, "has space"), "printable");
  EXPECT_KSBOX_ERROR(DiskImage(img.path, false, std::string(21, 'x')), "20");
  DiskImage first(img.path, false);
  EXPECT_KSBOX_ERROR(DiskImage(img.path, false), "in use");
  EXPECT_KSBOX_ERROR(DiskImage(img.path, true), "in use");
  EXPECT_EQ(first.capacity_sectors(), kImageBytes / 512);
}

TEST(DiskImage, ReadOnlyImagesMayBeShared) {
  TempImage img;
  DiskImage a(img.path, true), b(img.path, true);
  EXPECT_TRUE(a.read_only());
  UniqueFd empty(::open((img.path + "-empty").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
  EXPECT_KSBOX_ERROR(DiskImage(img.path + "-empty", false), "smaller than one");
  ::unlink((img.path + "-empty").c_str());
}

}  // namespace
}  // namespace ksbox::devices::blk
