// The device's identity, its host listener's lifecycle, and the host
// client's CONNECT handshake before any stream exists.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <sys/stat.h>

#include <fstream>

#include "devices/vsock/vsock.h"
#include "test_helpers.h"
#include "tests/unit/devices/vsock/vsock_fixture.h"

namespace ksbox::devices::vsock::testing {
namespace {

bool exists(const std::string& p) {
  struct stat st{};
  return ::lstat(p.c_str(), &st) == 0;
}

TEST_F(VsockTest, AnnouncesItselfAsVsockWithThreeQueues) {
  EXPECT_EQ(dev_->device_type(), uint32_t{VIRTIO_ID_VSOCK});
  EXPECT_EQ(dev_->queue_max_sizes().size(), 3u);
  const uint64_t f = dev_->device_features();
  EXPECT_TRUE(f & virtio::feature_bit(VIRTIO_F_VERSION_1));
  EXPECT_TRUE(f & virtio::feature_bit(VIRTIO_RING_F_EVENT_IDX));
  EXPECT_FALSE(f & virtio::feature_bit(VIRTIO_VSOCK_F_SEQPACKET));
}

TEST_F(VsockTest, ConfigSpaceIsTheGuestCidAndReadOnly) {
  ASSERT_EQ(dev_->config_size(), 8u);
  uint8_t buf[8];
  dev_->read_config(0, buf);
  uint64_t cid;
  std::memcpy(&cid, buf, 8);
  EXPECT_EQ(cid, kGuestCid);
  uint8_t lo[4], hi[4];
  dev_->read_config(0, lo);
  dev_->read_config(4, hi);
  EXPECT_EQ(lo[0], kGuestCid);
  EXPECT_EQ(hi[0], 0);
  const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  dev_->write_config(0, junk);
  dev_->read_config(0, buf);
  std::memcpy(&cid, buf, 8);
  EXPECT_EQ(cid, kGuestCid);
}

TEST_F(VsockTest, ListensFromConstructionAndUnlinksOnDestruction) {
  struct stat st{};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_TRUE(connect_host(path_));
  dev_.reset();
  EXPECT_FALSE(exists(path_));
}

TEST_F(VsockTest, SecondDeviceOnALiveSocketIsRefused) {
  EXPECT_KSBOX_ERROR(VirtioVsock(path_, kGuestCid), "in use");
  EXPECT_TRUE(exists(path_));  // the refused one must not remove the live one's socket
  EXPECT_TRUE(connect_host(path_));
}

TEST_F(VsockTest, StaleSocketIsReplaced) {
  const std::string stale = dir_.path() + "/stale.sock";
  {
    UniqueFd l = listen_host(stale);
    ASSERT_TRUE(l);
  }  // closed: the file stays, nobody listens
  ASSERT_TRUE(exists(stale));
  VirtioVsock dev(stale, kGuestCid);
  EXPECT_TRUE(connect_host(stale));
}

TEST_F(VsockTest, NonSocketPathIsRefusedAndLeftAlone) {
  const std::string file = dir_.path() + "/file";
  std::ofstream(file) << "precious";
  EXPECT_KSBOX_ERROR(VirtioVsock(file, kGuestCid), "not a socket");
  std::ifstream in(file);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(VsockTest, BadPathsAndCidsAreRefused) {
  EXPECT_KSBOX_ERROR(VirtioVsock(dir_.path() + "/" + std::string(120, 'x'), kGuestCid), "shorter");
  EXPECT_KSBOX_ERROR(VirtioVsock(dir_.path() + "/no/such/dir/v.sock", kGuestCid), "cannot create");
  for (uint64_t cid : {0ull, 1ull, 2ull, 0xffffffffull, 1ull << 40})
    EXPECT_KSBOX_ERROR(VirtioVsock(dir_.path() + "/c.sock", cid), "CID");
}

TEST_F(VsockTest, ConnectBeforeTheDriverIsUpIsClosedPromptly) {
  UniqueFd fd = connect_host(path_);
  ASSERT_TRUE(fd);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(write_all(fd.get(), "CONNECT 1024\n"));
  EXPECT_TRUE(closed_without_data(fd.get(), 1000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(dev_->stats().host_connects_failed, 1u);
  // Once the driver is up, the same request reaches the guest.
  start_guest();
  auto again = send_connect(1024);
  ASSERT_TRUE(again.req);
  EXPECT_EQ(again.req->hdr.op, VIRTIO_VSOCK_OP_REQUEST);
}

TEST_F(VsockTest, BadConnectLinesAreClosed) {
  start_guest();
  for (const std::string& line : std::vector<std::string>{"HELLO\n", "CONNECT x\n", "CONNECT 4294967296\n", "CONNECT\n",
                           std::string(40, 'C') /* no newline within 32 bytes */}) {
    SCOPED_TRACE(line);
    UniqueFd fd = connect_host(path_);
    ASSERT_TRUE(write_all(fd.get(), line));
    EXPECT_TRUE(closed_without_data(fd.get(), 1000));
  }
  EXPECT_EQ(dev_->stats().host_connects_failed, 5u);
  EXPECT_FALSE(guest_->recv(50ms));  // nothing reached the guest
}

TEST_F(VsockTest, ClientClosingBeforeTheLineEndsIsDropped) {
  start_guest();
  {
    UniqueFd fd = connect_host(path_);
    ASSERT_TRUE(write_all(fd.get(), "CONNECT 10"));
  }
  // The device notices and forgets it; a later client still works.
  auto [fd, req] = send_connect(1024);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->hdr.dst_port, 1024u);
}

class VsockShortTimeoutTest : public VsockTest {
 protected:
  MuxerLimits limits() const override {
    MuxerLimits l;
    l.connect_timeout = 200ms;
    return l;
  }
};

TEST_F(VsockShortTimeoutTest, SilentClientIsClosedAfterTheTimeout) {
  start_guest();
  UniqueFd fd = connect_host(path_);
  ASSERT_TRUE(write_all(fd.get(), "CONNECT 1"));  // never finished
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_without_data(fd.get(), 2000));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
}

TEST_F(VsockShortTimeoutTest, GuestThatNeverAnswersTimesOutAndGetsAnRst) {
  auto& g = start_guest();
  auto [fd, req] = send_connect(1024);
  ASSERT_TRUE(req);
  ASSERT_EQ(req->hdr.op, VIRTIO_VSOCK_OP_REQUEST);
  EXPECT_TRUE(closed_without_data(fd.get(), 2000));
  // A late RESPONSE must not find a stream: the device reset it.
  auto rst = g.recv();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(rst->hdr.src_port, req->hdr.src_port);
  EXPECT_EQ(dev_->stats().connections, 0u);
}

TEST_F(VsockShortTimeoutTest, RequestNeverDeliveredIsDroppedWithoutRst) {
  auto& g = start_guest(Layout::kSplit, 0);  // the guest posts no RX buffers
  UniqueFd fd = connect_host(path_);
  ASSERT_TRUE(write_all(fd.get(), "CONNECT 1024\n"));
  EXPECT_TRUE(closed_without_data(fd.get(), 2000));
  g.post_rx(8);
  EXPECT_FALSE(g.recv(100ms));  // neither the stale REQUEST nor an RST for it
  EXPECT_EQ(dev_->stats().connections, 0u);
}

}  // namespace
}  // namespace ksbox::devices::vsock::testing
