#include "devices/vsock/packet.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "devices/vsock/host_socket.h"

namespace ksbox::devices::vsock {
namespace {

constexpr uint64_t kCid = 7;

class VsockPacketTest : public ::testing::Test {
 protected:
  // Writes `bytes` into guest memory as the readable segments `lens` (the
  // segments are placed 0x100 apart, never adjacent) and returns the chain.
  virtio::DescriptorChain chain(std::span<const uint8_t> bytes, std::vector<uint32_t> lens) {
    virtio::DescriptorChain c;
    uint64_t addr = 0x1000;
    size_t off = 0;
    for (uint32_t len : lens) {
      if (len) {
        EXPECT_TRUE(mem_.write_bytes(GuestAddress(addr), bytes.subspan(off, len)));
      }
      c.readable.push_back({GuestAddress(addr), len});
      c.readable_bytes += len;
      off += len;
      addr += (len + 0x1ff) & ~uint64_t{0xff};
    }
    return c;
  }
  static Header rw(uint32_t len) {
    Header h;
    h.src_cid = kCid;
    h.dst_cid = kHostCid;
    h.src_port = 1234;
    h.dst_port = 1024;
    h.len = len;
    h.op = VIRTIO_VSOCK_OP_RW;
    h.buf_alloc = 262144;
    h.fwd_cnt = 77;
    return h;
  }
  static std::vector<uint8_t> packet(const Header& h, size_t payload) {
    auto w = encode(h);
    std::vector<uint8_t> v(w.begin(), w.end());
    for (size_t i = 0; i < payload; ++i) v.push_back(static_cast<uint8_t>(i * 7));
    return v;
  }
  std::vector<uint8_t> gather(const std::vector<virtio::Segment>& segs) {
    std::vector<uint8_t> out;
    for (const auto& s : segs) {
      auto host = mem_.slice(s.addr, s.len);
      out.insert(out.end(), host->begin(), host->end());
    }
    return out;
  }

  GuestMemory mem_{{{GuestAddress(0), 0x40000}}};
};

TEST_F(VsockPacketTest, HeaderRoundTripsInWireOrder) {
  const Header h = rw(5);
  const auto w = encode(h);
  EXPECT_EQ(decode(w), h);
  // Spot-check the layout against the uapi struct.
  virtio_vsock_hdr raw;
  std::memcpy(&raw, w.data(), sizeof raw);
  EXPECT_EQ(raw.src_cid, kCid);
  EXPECT_EQ(raw.dst_port, 1024u);
  EXPECT_EQ(raw.len, 5u);
  EXPECT_EQ(raw.op, VIRTIO_VSOCK_OP_RW);
  EXPECT_EQ(raw.fwd_cnt, 77u);
}

TEST_F(VsockPacketTest, ParsesHeaderAndPayloadAcrossAnySplit) {
  const auto bytes = packet(rw(100), 100);
  const std::vector<std::vector<uint32_t>> splits = {
      {144}, {44, 100}, {10, 34, 100}, {1, 43, 1, 99}, {50, 94}, {20, 30, 0, 94}, {143, 1}};
  for (const auto& split : splits) {
    SCOPED_TRACE(::testing::PrintToString(split));
    const auto r = parse_tx(mem_, chain(bytes, split), kCid);
    ASSERT_EQ(r.refusal, Refusal::kNone);
    EXPECT_EQ(r.packet.hdr, rw(100));
    EXPECT_EQ(gather(r.packet.payload), std::vector<uint8_t>(bytes.begin() + kHeaderSize, bytes.end()));
  }
}

TEST_F(VsockPacketTest, PayloadIsCutAtLenAndTrailingBytesIgnored) {
  const auto bytes = packet(rw(10), 60);
  const auto r = parse_tx(mem_, chain(bytes, {44, 60}), kCid);
  ASSERT_EQ(r.refusal, Refusal::kNone);
  EXPECT_EQ(gather(r.packet.payload).size(), 10u);
}

TEST_F(VsockPacketTest, ControlPacketsCarryNoPayload) {
  Header h = rw(0);
  h.op = VIRTIO_VSOCK_OP_REQUEST;
  const auto r = parse_tx(mem_, chain(packet(h, 0), {44}), kCid);
  ASSERT_EQ(r.refusal, Refusal::kNone);
  EXPECT_TRUE(r.packet.payload.empty());
}

TEST_F(VsockPacketTest, RefusesEveryBadField) {
  struct Case {
    const char* name;
    Header h;
    size_t payload;
    Refusal want;
  };
  std::vector<Case> cases;
  cases.push_back({"len beyond chain", rw(101), 100, Refusal::kBadLength});
  cases.push_back({"len above 64 KiB", rw(kMaxPayload + 1), 0, Refusal::kOversizedPayload});
  Header h = rw(0);
  h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
  cases.push_back({"seqpacket", h, 0, Refusal::kBadType});
  h = rw(0);
  h.src_cid = kCid + 1;
  cases.push_back({"spoofed source", h, 0, Refusal::kBadSrcCid});
  h = rw(0);
  h.dst_cid = 5;
  cases.push_back({"not to the host", h, 0, Refusal::kBadDstCid});
  for (uint16_t op : {uint16_t{0}, uint16_t{8}, uint16_t{0xffff}}) {
    h = rw(0);
    h.op = op;
    cases.push_back({"unknown op", h, 0, Refusal::kUnknownOp});
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto bytes = packet(c.h, c.payload);
    EXPECT_EQ(parse_tx(mem_, chain(bytes, {static_cast<uint32_t>(bytes.size())}), kCid).refusal, c.want);
  }
}

TEST_F(VsockPacketTest, ShortHeaderRefused) {
  const auto bytes = packet(rw(0), 0);
  EXPECT_EQ(parse_tx(mem_, chain(bytes, {43}), kCid).refusal, Refusal::kShortHeader);
  EXPECT_EQ(parse_tx(mem_, chain(bytes, {20, 23}), kCid).refusal, Refusal::kShortHeader);
  EXPECT_EQ(parse_tx(mem_, virtio::DescriptorChain{}, kCid).refusal, Refusal::kShortHeader);
}

TEST_F(VsockPacketTest, MaxPayloadAccepted) {
  const auto bytes = packet(rw(kMaxPayload), kMaxPayload);
  const auto r = parse_tx(mem_, chain(bytes, {44, kMaxPayload}), kCid);
  ASSERT_EQ(r.refusal, Refusal::kNone);
  EXPECT_EQ(gather(r.packet.payload).size(), kMaxPayload);
}

TEST_F(VsockPacketTest, SegmentOutsideRamIsAMalformedChain) {
  virtio::DescriptorChain c;
  c.readable.push_back({GuestAddress(0x3fff0), 44});  // crosses the end of RAM
  c.readable_bytes = 44;
  EXPECT_EQ(parse_tx(mem_, c, kCid).refusal, Refusal::kMalformedChain);
}

TEST_F(VsockPacketTest, RxHeaderAndPayloadFollowTheWritableSegments) {
  virtio::DescriptorChain c;
  c.writable = {{GuestAddress(0x1000), 10}, {GuestAddress(0x2000), 40}, {GuestAddress(0x3000), 100}};
  c.writable_bytes = 150;
  EXPECT_EQ(rx_payload_capacity(c), 106u);
  Header h = rw(6);
  h.src_cid = kHostCid;
  h.dst_cid = kCid;
  ASSERT_TRUE(write_rx_header(mem_, c, h));
  std::vector<uint8_t> data(200);
  std::iota(data.begin(), data.end(), uint8_t{1});
  EXPECT_EQ(write_rx_payload(mem_, c, data), 106u);  // capped at the capacity

  std::vector<uint8_t> all;
  for (const auto& s : c.writable) {
    auto host = mem_.slice(s.addr, s.len);
    all.insert(all.end(), host->begin(), host->end());
  }
  EXPECT_EQ(decode(std::span<const uint8_t, kHeaderSize>(all.data(), kHeaderSize)), h);
  EXPECT_EQ(std::vector<uint8_t>(all.begin() + kHeaderSize, all.end()),
            std::vector<uint8_t>(data.begin(), data.begin() + 106));

  std::vector<iovec> iov;
  EXPECT_EQ(rx_payload_iovecs(mem_, c, 1000, iov), 106u);
  ASSERT_EQ(iov.size(), 2u);  // 6 bytes in the second segment, 100 in the third
  EXPECT_EQ(iov[0].iov_len, 6u);
  EXPECT_EQ(iov[1].iov_len, 100u);
  EXPECT_EQ(rx_payload_iovecs(mem_, c, 50, iov), 50u);
}

TEST_F(VsockPacketTest, RxChainWithoutRoomForAHeaderIsUnusable) {
  virtio::DescriptorChain c;
  c.writable = {{GuestAddress(0x1000), 43}};
  c.writable_bytes = 43;
  EXPECT_FALSE(rx_chain_usable(c));
  EXPECT_FALSE(write_rx_header(mem_, c, rw(0)));
  EXPECT_EQ(rx_payload_capacity(c), 0u);
}

TEST(VsockConnectLineTest, ParsesPortsAndRefusesTheRest) {
  EXPECT_EQ(parse_connect_line("CONNECT 1024"), 1024u);
  EXPECT_EQ(parse_connect_line("CONNECT 0"), 0u);
  EXPECT_EQ(parse_connect_line("CONNECT 4294967295"), 4294967295u);
  EXPECT_EQ(parse_connect_line("CONNECT 52\r"), 52u);
  for (const char* bad : {"CONNECT 4294967296", "CONNECT", "CONNECT ", "CONNECT -1", "CONNECT +1", "CONNECT 1 ",
                          "CONNECT  1", "connect 1", "CONNECT 0x10", "CONNECT 99999999999", "HELLO 1", ""})
    EXPECT_EQ(parse_connect_line(bad), std::nullopt) << bad;
}

}  // namespace
}  // namespace ksbox::devices::vsock
