// Streams end to end: a fake Linux guest driver on one side, real Unix
// sockets on the other.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <map>
#include <set>
#include <thread>

#include "tests/unit/devices/vsock/vsock_fixture.h"

namespace ksbox::devices::vsock::testing {
namespace {

// Payload of the next RW packet for `s` (credit updates on the way are absorbed).
std::optional<std::string> recv_data(FakeVsockGuest& g, GuestStream& s) {
  auto p = g.recv_skip_credit();
  if (!p) return std::nullopt;
  EXPECT_TRUE(s.is_for_me(*p));
  s.observe(*p);
  if (p->hdr.op != VIRTIO_VSOCK_OP_RW) return "<op " + std::to_string(p->hdr.op) + ">";
  s.consumed(p->hdr.len);
  return std::string(p->payload.begin(), p->payload.end());
}

TEST_F(VsockTest, HostConnectHandshake) {
  auto& g = start_guest();
  auto [fd, req] = send_connect(1024);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->hdr.op, VIRTIO_VSOCK_OP_REQUEST);
  EXPECT_EQ(req->hdr.dst_port, 1024u);
  EXPECT_GE(req->hdr.src_port, 1u << 30);
  EXPECT_EQ(req->hdr.buf_alloc, 256u * 1024);
  EXPECT_EQ(req->used_len, kHeaderSize);
  GuestStream s{g, 1024, req->hdr.src_port};
  s.send(VIRTIO_VSOCK_OP_RESPONSE);
  EXPECT_EQ(read_line(fd.get()), "OK " + std::to_string(req->hdr.src_port));
  EXPECT_EQ(dev_->stats().host_connects_ok, 1u);
  EXPECT_EQ(dev_->stats().connections, 1u);
  EXPECT_GT(g.irqs.load(), 0);
}

TEST_F(VsockTest, HostPortsAreDistinct) {
  start_guest();
  auto a = open_host_stream(1024);
  auto b = open_host_stream(1024);
  EXPECT_NE(a.guest.host_port, b.guest.host_port);
}

TEST_F(VsockTest, DataFlowsBothWaysByteExact) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  ASSERT_TRUE(write_all(fd.get(), "ping from host"));
  EXPECT_EQ(recv_data(g, s), "ping from host");
  s.send_data("pong from guest");
  EXPECT_EQ(read_n(fd.get(), 15), "pong from guest");
  EXPECT_EQ(dev_->stats().bytes_to_host, 15u);
  EXPECT_EQ(dev_->stats().bytes_to_guest, 14u);
}

TEST_F(VsockTest, DataPipelinedBehindTheConnectLineIsKept) {
  auto& g = start_guest();
  auto [fd, req] = send_connect(1024, "early bytes");
  ASSERT_TRUE(req);
  GuestStream s{g, 1024, req->hdr.src_port};
  s.send(VIRTIO_VSOCK_OP_RESPONSE);
  EXPECT_EQ(read_line(fd.get()), "OK " + std::to_string(s.host_port));
  EXPECT_EQ(recv_data(g, s), "early bytes");
}

TEST_F(VsockTest, GuestRstToRequestClosesTheClientWithoutOk) {
  auto& g = start_guest();
  auto [fd, req] = send_connect(9);
  ASSERT_TRUE(req);
  GuestStream s{g, 9, req->hdr.src_port};
  s.send(VIRTIO_VSOCK_OP_RST);  // nobody listens on port 9
  EXPECT_TRUE(closed_without_data(fd.get()));
  EXPECT_EQ(dev_->stats().host_connects_failed, 1u);
  EXPECT_EQ(dev_->stats().connections, 0u);
  EXPECT_FALSE(g.recv(50ms));  // an RST is never answered
}

TEST_F(VsockTest, EveryRxLayoutCarriesPackets) {
  for (Layout layout : {Layout::kSplit, Layout::kSingle, Layout::kScattered, Layout::kIndirect}) {
    SCOPED_TRACE(static_cast<int>(layout));
    auto& g = start_guest(layout);
    auto [fd, s] = open_host_stream(77);
    const auto data = pattern(10000, 3);
    ASSERT_TRUE(write_all(fd.get(), data));
    std::string got;
    while (got.size() < data.size()) {
      auto part = recv_data(g, s);
      ASSERT_TRUE(part);
      ASSERT_LE(part->size(), kRxPayload);
      got += *part;
    }
    EXPECT_EQ(got, str(data));
    guest_.reset();
  }
}

TEST_F(VsockTest, EveryTxLayoutCarriesPackets) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(77);
  std::string want;
  uint32_t seed = 0;
  for (Layout layout : {Layout::kSplit, Layout::kSingle, Layout::kScattered, Layout::kIndirect}) {
    for (size_t n : {1, 6, 7, 100, 4096, 65536}) {
      const auto data = pattern(n, ++seed);
      s.send_data(data, layout);
      want += str(data);
    }
  }
  EXPECT_EQ(read_n(fd.get(), want.size()), want);
  (void)g;
}

TEST_F(VsockTest, GuestInitiatedStream) {
  UniqueFd listener = listen_host(path_ + "_5000");
  ASSERT_TRUE(listener);
  auto& g = start_guest();
  GuestStream s{g, 49152, 5000};
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  UniqueFd host = accept_host(listener.get());
  ASSERT_TRUE(host);
  auto resp = g.recv();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->hdr.op, VIRTIO_VSOCK_OP_RESPONSE);
  EXPECT_TRUE(s.is_for_me(*resp));
  s.observe(*resp);
  s.send_data("hello host");
  EXPECT_EQ(read_n(host.get(), 10), "hello host");
  ASSERT_TRUE(write_all(host.get(), "hello guest"));
  EXPECT_EQ(recv_data(g, s), "hello guest");
  EXPECT_EQ(dev_->stats().guest_connects_ok, 1u);
}

TEST_F(VsockTest, GuestConnectToNobodyGetsRst) {
  auto& g = start_guest();
  GuestStream s{g, 49152, 5001};
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  ASSERT_NO_FATAL_FAILURE(expect_rst_for(s));
  EXPECT_EQ(dev_->stats().guest_connects_failed, 1u);
  EXPECT_EQ(dev_->stats().connections, 0u);
}

TEST_F(VsockTest, RwOnUnknownStreamGetsRstAndIsCounted) {
  auto& g = start_guest();
  GuestStream s{g, 40000, 6000};
  s.send_data("who are you");
  ASSERT_NO_FATAL_FAILURE(expect_rst_for(s));
  EXPECT_EQ(dev_->stats().refusals(Refusal::kUnknownConnection), 1u);
}

TEST_F(VsockTest, CreditRequestIsAnswered) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  s.send(VIRTIO_VSOCK_OP_CREDIT_REQUEST);
  auto p = g.recv();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->hdr.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
  EXPECT_EQ(p->hdr.buf_alloc, 256u * 1024);
  EXPECT_EQ(p->hdr.fwd_cnt, 0u);
}

TEST_F(VsockTest, HostEofBecomesShutdownSendThenGuestCloseEndsTheStream) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  ASSERT_TRUE(write_all(fd.get(), "last words"));
  ::shutdown(fd.get(), SHUT_WR);
  EXPECT_EQ(recv_data(g, s), "last words");
  auto sd = g.recv_skip_credit();
  ASSERT_TRUE(sd);
  EXPECT_EQ(sd->hdr.op, VIRTIO_VSOCK_OP_SHUTDOWN);
  EXPECT_EQ(sd->hdr.flags, uint32_t{VIRTIO_VSOCK_SHUTDOWN_SEND});
  // Half-closed: the guest can still send.
  s.send_data("reply after eof");
  EXPECT_EQ(read_n(fd.get(), 15), "reply after eof");
  // The guest closes: both directions are done, the device resets the stream.
  s.send(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
  auto rst = g.recv_skip_credit();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_TRUE(closed_without_data(fd.get()));
  EXPECT_EQ(dev_->stats().connections, 0u);
}

TEST_F(VsockTest, GuestShutdownSendGivesTheHostEofAndHostCanStillSend) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  s.send_data("bye");
  s.send(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND);
  EXPECT_EQ(read_n(fd.get(), 3), "bye");
  EXPECT_TRUE(closed_without_data(fd.get()));  // EOF after the data
  ASSERT_TRUE(write_all(fd.get(), "still here"));
  EXPECT_EQ(recv_data(g, s), "still here");
  // Host closes too: both directions shut, stream reset.
  fd.reset();
  auto rst = g.recv_skip_credit();
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->stats().connections, 0u);
}

TEST_F(VsockTest, GuestRstClosesTheHostSocket) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  s.send(VIRTIO_VSOCK_OP_RST);
  EXPECT_TRUE(closed_without_data(fd.get()));
  EXPECT_EQ(dev_->stats().connections, 0u);
  EXPECT_FALSE(g.recv(50ms));
}

TEST_F(VsockTest, HostSocketErrorResetsTheStream) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  // Unread data in the closing socket makes the close a reset for our side.
  s.send_data("unread");
  fd.reset();
  s.send_data("into the void");
  auto p = g.recv_skip_credit();
  ASSERT_TRUE(p);
  // EOF arrives as SHUTDOWN first, or straight as RST when the write failed.
  if (p->hdr.op == VIRTIO_VSOCK_OP_SHUTDOWN) p = g.recv_skip_credit();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->hdr.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->stats().connections, 0u);
}

TEST_F(VsockTest, ResetClosesStreamsAndTheDeviceServesAgain) {
  auto& g = start_guest();
  auto a = open_host_stream(1024);
  UniqueFd listener = listen_host(path_ + "_7000");
  GuestStream s{g, 50000, 7000};
  s.send(VIRTIO_VSOCK_OP_REQUEST);
  UniqueFd b = accept_host(listener.get());
  ASSERT_TRUE(b);
  // A host client still waiting for its OK.
  UniqueFd waiting = connect_host(path_);
  ASSERT_TRUE(write_all(waiting.get(), "CONNECT 1025\n"));
  ASSERT_TRUE(g.recv());  // RESPONSE to the guest's connect
  ASSERT_TRUE(g.recv());  // REQUEST for the waiting client
  EXPECT_EQ(dev_->stats().connections, 3u);

  g.reset_device();
  EXPECT_TRUE(closed_without_data(a.fd.get()));
  EXPECT_TRUE(closed_without_data(b.get()));
  EXPECT_TRUE(closed_without_data(waiting.get()));
  EXPECT_EQ(dev_->stats().connections, 0u);
  // Kicks racing with the reset are ignored.
  dev_->process_queue(0);
  dev_->process_queue(1);

  // A new driver instance works as before.
  guest_.reset();
  start_guest();
  auto [fd, s2] = open_host_stream(1024);
  s2.send_data("again");
  EXPECT_EQ(read_n(fd.get(), 5), "again");
}

TEST_F(VsockTest, MegabytesHostToGuestWithGuestCreditUpdates) {
  auto& g = start_guest(Layout::kSplit, 64);
  auto [fd, s] = open_host_stream(1024);
  const auto data = pattern(16 << 20, 11);
  std::thread writer([&, hfd = fd.get()] { EXPECT_TRUE(write_all(hfd, data)); });
  std::string got;
  got.reserve(data.size());
  uint32_t credit_updates = 0;
  while (got.size() < data.size()) {
    const uint32_t before = s.last_fwd_sent;
    auto part = recv_data(g, s);
    if (!part) break;
    got += *part;
    // Never more in flight than the credit the guest had advertised.
    ASSERT_LE(got.size() - before, s.buf_alloc);
    if (s.last_fwd_sent != before) ++credit_updates;
  }
  writer.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == str(data));
  EXPECT_GT(credit_updates, 10u);  // the guest had to grant credit many times
}

TEST_F(VsockTest, MegabytesGuestToHostWithDeviceCreditUpdates) {
  auto& g = start_guest();
  auto [fd, s] = open_host_stream(1024);
  const auto data = pattern(16 << 20, 12);
  std::string got;
  std::thread reader([&, hfd = fd.get()] { got = read_n(hfd, data.size()); });
  size_t sent = 0;
  while (sent < data.size()) {
    while (s.credit() == 0) {
      auto p = g.recv();
      ASSERT_TRUE(p) << "no credit update after " << sent << " bytes";
      s.observe(*p);
    }
    const size_t n = std::min<size_t>({s.credit(), kMaxPayload, data.size() - sent});
    s.send_data(std::span(data).subspan(sent, n));
    sent += n;
  }
  reader.join();
  EXPECT_TRUE(got == str(data));
  EXPECT_GT(dev_->stats().credit_updates_sent, 32u);
  EXPECT_EQ(dev_->stats().refusals(Refusal::kCreditOverrun), 0u);
}

TEST_F(VsockTest, FiftyConcurrentStreamsEachWay) {
  constexpr int kStreams = 50;
  auto& g = start_guest(Layout::kSplit, 128);
  // Host-initiated: all clients connect before the guest answers any.
  std::vector<UniqueFd> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(connect_host(path_));
    ASSERT_TRUE(write_all(clients.back().get(), "CONNECT " + std::to_string(2000 + i) + "\n"));
  }
  std::vector<GuestStream> streams;
  while (streams.size() < kStreams) {
    auto req = g.recv();
    ASSERT_TRUE(req);
    ASSERT_EQ(req->hdr.op, VIRTIO_VSOCK_OP_REQUEST);
    streams.push_back(GuestStream{g, req->hdr.dst_port, req->hdr.src_port});
    streams.back().observe(*req);
    streams.back().send(VIRTIO_VSOCK_OP_RESPONSE);
  }
  // Guest-initiated: 50 more to one host listener.
  UniqueFd listener = listen_host(path_ + "_3000");
  std::vector<GuestStream> outgoing;
  for (int i = 0; i < kStreams; ++i) {
    outgoing.push_back(GuestStream{g, static_cast<uint32_t>(60000 + i), 3000});
    outgoing.back().send(VIRTIO_VSOCK_OP_REQUEST);
  }
  std::vector<UniqueFd> accepted;
  for (int i = 0; i < kStreams; ++i) {
    accepted.push_back(accept_host(listener.get()));
    ASSERT_TRUE(accepted.back());
  }
  EXPECT_EQ(dev_->stats().connections, 2u * kStreams);

  // Every host-initiated client gets its own OK, then its own echo.
  for (int i = 0; i < kStreams; ++i) {
    const std::string ok = read_line(clients[i].get());
    ASSERT_EQ(ok.substr(0, 3), "OK ");
    ASSERT_TRUE(write_all(clients[i].get(), "msg " + std::to_string(i)));
  }
  std::map<uint32_t, std::string> by_guest_port;
  size_t responses = 0;
  while (by_guest_port.size() < kStreams) {
    auto p = g.recv();
    ASSERT_TRUE(p);
    if (p->hdr.op == VIRTIO_VSOCK_OP_RESPONSE) {
      ++responses;
      continue;
    }
    ASSERT_EQ(p->hdr.op, VIRTIO_VSOCK_OP_RW);
    by_guest_port[p->hdr.dst_port] += std::string(p->payload.begin(), p->payload.end());
  }
  for (auto& s : streams) {
    EXPECT_EQ(by_guest_port[s.guest_port], "msg " + std::to_string(s.guest_port - 2000));
    s.send_data("echo " + by_guest_port[s.guest_port]);
  }
  for (int i = 0; i < kStreams; ++i) {
    const std::string want = "echo msg " + std::to_string(i);
    EXPECT_EQ(read_n(clients[i].get(), want.size()), want);
  }
  // Guest-initiated: every RESPONSE arrived; each host socket gets its own bytes.
  while (responses < kStreams) {
    auto p = g.recv();
    ASSERT_TRUE(p);
    if (p->hdr.op == VIRTIO_VSOCK_OP_RESPONSE) ++responses;
  }
  for (auto& s : outgoing) s.send_data("from " + std::to_string(s.guest_port));
  std::set<std::string> seen;
  for (auto& a : accepted) seen.insert(read_n(a.get(), 10));
  EXPECT_EQ(seen.size(), size_t{kStreams});
  EXPECT_EQ(*seen.begin(), "from 60000");
}

}  // namespace
}  // namespace ksbox::devices::vsock::testing
