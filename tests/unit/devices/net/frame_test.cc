#include "devices/net/frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace ksbox::devices::net {
namespace {

constexpr uint64_t kCsum = 1ull << kFeatureCsum;

// A packet: virtio-net header, then an Ethernet + IPv4 + UDP frame whose
// UDP checksum field holds the pseudo-header sum, as Linux leaves it for a
// NIC with checksum offload.
std::vector<uint8_t> udp_packet(const NetHeader& h, std::vector<uint8_t> payload) {
  const auto hdr = encode(h);
  std::vector<uint8_t> p(hdr.begin(), hdr.end());
  const uint8_t eth[14] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00};
  p.insert(p.end(), eth, eth + 14);
  const uint16_t udp_len = static_cast<uint16_t>(8 + payload.size());
  const uint16_t ip_len = static_cast<uint16_t>(20 + udp_len);
  const uint8_t ip[20] = {0x45, 0, uint8_t(ip_len >> 8), uint8_t(ip_len), 0, 0, 0x40, 0, 64, 17, 0, 0,
                          10,   0, 2, 15, 10, 0, 2, 2};
  p.insert(p.end(), ip, ip + 20);
  // Pseudo header: src, dst, proto, UDP length.
  const uint8_t pseudo[12] = {10, 0, 2, 15, 10, 0, 2, 2, 0, 17, uint8_t(udp_len >> 8), uint8_t(udp_len)};
  const uint16_t partial = ones_complement_sum(pseudo);
  const uint8_t udp[8] = {0x30, 0x39, 0x00, 0x35, uint8_t(udp_len >> 8), uint8_t(udp_len), uint8_t(partial >> 8),
                          uint8_t(partial)};
  p.insert(p.end(), udp, udp + 8);
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

// Offsets of the UDP header inside the frame (after the virtio header).
constexpr uint16_t kUdpStart = 14 + 20, kUdpCsumOffset = 6;

TEST(NetFrameTest, HeaderRoundTripsInWireOrder) {
  const NetHeader h{kHdrNeedsCsum, kGsoNone, 0x1122, 0x3344, 0x5566, 0x7788, 0x99aa};
  const auto wire = encode(h);
  EXPECT_EQ(wire[0], kHdrNeedsCsum);
  EXPECT_EQ(wire[2], 0x22);  // little-endian
  EXPECT_EQ(wire[10], 0xaa);
  EXPECT_EQ(decode(wire), h);
}

TEST(NetFrameTest, OnesComplementSumMatchesRfc1071Example) {
  // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(ones_complement_sum(data), 0xddf2);
  const uint8_t odd[] = {0x01};  // a trailing byte is the high half of a word
  EXPECT_EQ(ones_complement_sum(odd), 0x0100);
}

TEST(NetFrameTest, PartialChecksumIsCompletedOverTheSegment) {
  NetHeader h;
  h.flags = kHdrNeedsCsum;
  h.csum_start = kUdpStart;
  h.csum_offset = kUdpCsumOffset;
  auto p = udp_packet(h, {'h', 'e', 'l', 'l', 'o'});
  ASSERT_EQ(prepare_tx_packet(p, kCsum), TxRefusal::kNone);
  // A receiver's check: pseudo header + segment (with the checksum) sums to 0xffff.
  const std::span<const uint8_t> frame(p.data() + kNetHeaderSize, p.size() - kNetHeaderSize);
  const uint16_t udp_len = static_cast<uint16_t>(frame.size() - kUdpStart);
  const uint8_t pseudo[12] = {10, 0, 2, 15, 10, 0, 2, 2, 0, 17, uint8_t(udp_len >> 8), uint8_t(udp_len)};
  EXPECT_EQ(ones_complement_sum(frame.subspan(kUdpStart), ones_complement_sum(pseudo)), 0xffff);
}

TEST(NetFrameTest, FrameWithoutNeedsCsumIsLeftAlone) {
  auto p = udp_packet({}, {1, 2, 3});
  const auto before = p;
  EXPECT_EQ(prepare_tx_packet(p, 0), TxRefusal::kNone);
  EXPECT_EQ(p, before);
}

TEST(NetFrameTest, RefusesWhatWasNotNegotiatedOrDoesNotFit) {
  NetHeader h;
  h.flags = kHdrNeedsCsum;
  h.csum_start = kUdpStart;
  h.csum_offset = kUdpCsumOffset;
  auto p = udp_packet(h, {1});
  EXPECT_EQ(prepare_tx_packet(p, 0), TxRefusal::kCsumNotOffered);

  NetHeader gso;
  gso.gso_type = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
  p = udp_packet(gso, {1});
  EXPECT_EQ(prepare_tx_packet(p, kCsum), TxRefusal::kGsoNotOffered);

  for (auto [start, off] : {std::pair<uint16_t, uint16_t>{100, 0}, {kUdpStart, 200}, {0xffff, 0xffff}, {42, 0}}) {
    SCOPED_TRACE(testing::Message() << start << "+" << off);
    h.csum_start = start;
    h.csum_offset = off;
    p = udp_packet(h, {1});  // frame: 14 + 20 + 8 + 1 = 43 bytes; the field needs 2
    EXPECT_EQ(prepare_tx_packet(p, kCsum), TxRefusal::kBadCsumOffsets);
  }

  std::vector<uint8_t> shorty(kNetHeaderSize + kEthHeaderSize - 1, 0);
  EXPECT_EQ(prepare_tx_packet(shorty, kCsum), TxRefusal::kShortPacket);
  std::vector<uint8_t> huge(kMaxPacketBytes + 1, 0);
  EXPECT_EQ(prepare_tx_packet(huge, kCsum), TxRefusal::kOversizedPacket);
  std::vector<uint8_t> largest(kMaxPacketBytes, 0);
  EXPECT_EQ(prepare_tx_packet(largest, kCsum), TxRefusal::kNone);
}

TEST(NetFrameTest, RxHeaderSaysDataValidOnlyWithGuestCsum) {
  EXPECT_EQ(rx_header(0, 1).flags, 0);
  EXPECT_EQ(rx_header(1ull << kFeatureGuestCsum, 3).flags, kHdrDataValid);
  EXPECT_EQ(rx_header(0, 3).num_buffers, 3);
  EXPECT_EQ(rx_header(0, 1).gso_type, kGsoNone);
}

}  // namespace
}  // namespace ksbox::devices::net
