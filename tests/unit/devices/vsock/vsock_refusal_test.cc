// A hostile or broken guest: every refusal is counted, memory stays bounded,
// and the other streams keep working.
#include <gtest/gtest.h>

#include "tests/unit/devices/vsock/vsock_fixture.h"

namespace ksbox::devices::vsock::testing {
namespace {

TEST_F(VsockTest, MalformedPacketsAreCountedAndOtherStreamsKeepWorking) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);

  // A header cut short.
  const auto good = encode(s.hdr(VIRTIO_VSOCK_OP_RW, 4));
  g.send_bytes(std::span(good).first(30));
  // len beyond the payload actually there.
  Header h = s.hdr(VIRTIO_VSOCK_OP_RW, 100);
  g.send(h, std::vector<uint8_t>(10, 'x'));
  // len above 64 KiB.
  h = s.hdr(VIRTIO_VSOCK_OP_RW, kMaxPayload + 1);
  g.send(h);
  // Spoofed source CID, wrong destination, SEQPACKET, unknown op.
  h = s.hdr(VIRTIO_VSOCK_OP_RW, 3);
  h.src_cid = kGuestCid + 1;
  g.send(h, std::vector<uint8_t>(3, 'x'));
  h = s.hdr(VIRTIO_VSOCK_OP_RW, 3);
  h.dst_cid = 9;
  g.send(h, std::vector<uint8_t>(3, 'x'));
  h = s.hdr(VIRTIO_VSOCK_OP_RW, 3);
  h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
  g.send(h, std::vector<uint8_t>(3, 'x'));
  h = s.hdr(42);
  g.send(h);
  // A descriptor loop.
  const virtio::Desc loop[] = {{0x400000, 44, VRING_DESC_F_NEXT, 0}};
  g.send_raw_chain(loop);

  const auto st = dev_->stats();
  EXPECT_EQ(st.refusals(Refusal::kShortHeader), 1u);
  EXPECT_EQ(st.refusals(Refusal::kBadLength), 1u);
  EXPECT_EQ(st.refusals(Refusal::kOversizedPayload), 1u);
  EXPECT_EQ(st.refusals(Refusal::kBadSrcCid), 1u);
  EXPECT_EQ(st.refusals(Refusal::kBadDstCid), 1u);
  EXPECT_EQ(st.refusals(Refusal::kBadType), 1u);
  EXPECT_EQ(st.refusals(Refusal::kUnknownOp), 1u);
  EXPECT_EQ(st.refusals(Refusal::kMalformedChain), 1u);
  EXPECT_EQ(g.tx_used(), g.tx_published());  // every chain was completed
  EXPECT_EQ(g.needs_reset.load(), 0);
  EXPECT_EQ(st.bytes_to_host, 0u);  // nothing of it reached the host

  // Dropped, not answered; and the stream is intact.
  EXPECT_FALSE(g.recv(50ms));
  s.send_data("still fine");
  EXPECT_EQ(read_n(fd.get(), 10), "still fine");
  ASSERT_TRUE(write_all(fd.get(), "me too"));
  auto p = g.recv();
  ASSERT_TRUE(p);
  EXPECT_EQ(std::string(p->payload.begin(), p->payload.end()), "me too");
}

TEST_F(VsockTest, CreditOverrunResetsOnlyThatStream) {
  auto& g = start_guest();
  auto a = open_host_stream(1024);
  auto b = open_host_stream(1025);
  // The host does not read, and the guest ignores its credit: once the
  // host socket and the device's buffer (the credit it gave) are full, the
  // stream is reset instead of buffering more.
  const auto chunk = pattern(kMaxPayload, 1);
  uint32_t sent = 0;
  while (dev_->stats().refusals(Refusal::kCreditOverrun) == 0 && sent < (4u << 20)) {
    a.guest.send_data(chunk);
    sent += kMaxPayload;
  }
  EXPECT_EQ(dev_->stats().refusals(Refusal::kCreditOverrun), 1u);
  EXPECT_GT(sent, Connection::kBufAlloc);  // everything within the credit was taken
  auto rst = g.recv_skip_credit();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_TRUE(a.guest.is_for_me(*rst));
  // Stream b is unaffected.
  b.guest.send_data("b lives");
  EXPECT_EQ(read_n(b.fd.get(), 7), "b lives");
  EXPECT_EQ(dev_->stats().connections, 1u);
}

TEST_F(VsockTest, OpsOutOfStateResetTheStream) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  s.send(VIRTIO_VSOCK_OP_RESPONSE);  // already established
  auto rst = g.recv();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->stats().refusals(Refusal::kUnexpectedOp), 1u);
  EXPECT_TRUE(closed_without_data(fd.get()));
}

TEST_F(VsockTest, RwBeforeResponseResetsTheRequest) {
  auto& g = start_guest();
  auto [fd, req] = send_connect(1024);
  ASSERT_TRUE(req);
  GuestStream s{g, 1024, req->hdr.src_port};
  s.send_data("too early");
  auto rst = g.recv();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_TRUE(closed_without_data(fd.get()));
}

TEST_F(VsockTest, DuplicateRequestResetsTheStream) {
  UniqueFd listener = listen_host(path_ + "_5000");
  auto& g = start_guest();
  GuestStream s{g, 40000, 5000};
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  UniqueFd host = accept_host(listener.get());
  ASSERT_TRUE(g.recv());  // RESPONSE
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  auto rst = g.recv();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->stats().refusals(Refusal::kDuplicateRequest), 1u);
  EXPECT_TRUE(closed_without_data(host.get()));
}

TEST_F(VsockTest, BrokenQueuesAskForResetAndTheDeviceRecovers) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  g.publish_raw_tx_head(kRingSize + 3);  // a head the device cannot complete
  EXPECT_EQ(g.needs_reset.load(), 1);
  // Parked until the driver resets: host data stays where it is.
  ASSERT_TRUE(write_all(fd.get(), "waiting"));
  EXPECT_FALSE(g.recv(50ms));
  guest_.reset();
  EXPECT_TRUE(closed_without_data(fd.get()));

  // The RX queue breaks when the device first needs a buffer.
  auto& g2 = start_guest(Layout::kSplit, 0);
  g2.publish_raw_rx_head(kRingSize + 1);
  UniqueFd client = connect_host(path_);
  ASSERT_TRUE(write_all(client.get(), "CONNECT 1\n"));
  for (int i = 0; i < 200 && g2.needs_reset.load() == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(g2.needs_reset.load(), 1);
  // A broken device refuses new clients at once.
  UniqueFd late = connect_host(path_);
  ASSERT_TRUE(write_all(late.get(), "CONNECT 1\n"));
  EXPECT_TRUE(closed_without_data(late.get(), 500));
}

class VsockSmallLimitsTest : public VsockTest {
 protected:
  MuxerLimits limits() const override {
    MuxerLimits l;
    l.max_connections = 4;
    l.max_rst_backlog = 4;
    return l;
  }
};

TEST_F(VsockSmallLimitsTest, RequestsBeyondTheConnectionLimitGetRst) {
  UniqueFd listener = listen_host(path_ + "_5000");
  auto& g = start_guest();
  std::vector<UniqueFd> accepted;
  for (uint32_t i = 0; i < 4; ++i) {
    GuestStream s{g, 40000 + i, 5000};
    s.send(VIRTIO_VSOCK_OP_REQUEST);
    accepted.push_back(accept_host(listener.get()));
    auto resp = g.recv();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->hdr.op, VIRTIO_VSOCK_OP_RESPONSE);
  }
  GuestStream fifth{g, 40004, 5000};
  fifth.send(VIRTIO_VSOCK_OP_REQUEST);
  ASSERT_NO_FATAL_FAILURE(expect_rst_for(fifth));
  EXPECT_EQ(dev_->stats().refusals(Refusal::kConnectionLimit), 1u);
  // Host clients are refused too.
  UniqueFd client = connect_host(path_);
  ASSERT_TRUE(write_all(client.get(), "CONNECT 1\n"));
  EXPECT_TRUE(closed_without_data(client.get()));
  EXPECT_EQ(dev_->stats().connections, 4u);
}

TEST_F(VsockSmallLimitsTest, WithoutRxBuffersTxStopsInsteadOfQueueingRsts) {
  auto& g = start_guest(Layout::kSplit, 0);
  // Each packet for an unknown stream wants an RST the guest has no buffer for.
  for (uint32_t i = 0; i < 12; ++i) {
    GuestStream s{g, 30000 + i, 9999};
    s.send_data("x");
  }
  EXPECT_EQ(g.tx_published(), 12);
  EXPECT_LE(g.tx_used(), 5);  // backlog of 4, then the ring is left alone
  EXPECT_EQ(dev_->stats().tx_stalls, 1u);
  // RX buffers unblock everything, in order.
  g.post_rx(32);
  std::vector<uint32_t> ports;
  while (auto p = g.recv(500ms)) {
    EXPECT_EQ(p->hdr.op, VIRTIO_VSOCK_OP_RST);
    ports.push_back(p->hdr.dst_port);
    if (ports.size() == 12) break;
  }
  ASSERT_EQ(ports.size(), 12u);
  for (uint32_t i = 0; i < 12; ++i) EXPECT_EQ(ports[i], 30000 + i);
  EXPECT_EQ(g.tx_used(), 12);
  EXPECT_EQ(dev_->stats().refusals(Refusal::kUnknownConnection), 12u);
}

TEST_F(VsockTest, RxBuffersTooSmallAreReturnedEmpty) {
  auto& g = start_guest(Layout::kSplit, 0);
  g.post_raw_rx(200, 0x300000, 20, VRING_DESC_F_WRITE);  // no room for a header
  g.post_raw_rx(201, 0x300100, 64, 0);                   // not writable
  g.post_rx(4);
  GuestStream s{g, 30000, 9999};
  s.send_data("x");
  auto rst = g.recv();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->stats().refusals(Refusal::kRxBufferTooSmall), 2u);
  EXPECT_EQ(g.rx_buffers_used(), 3u);  // two returned empty, one RST
}

}  // namespace
}  // namespace ksbox::devices::vsock::testing
