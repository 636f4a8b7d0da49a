// The libslirp backend on the host, without a guest: frames in, frames out.
#include "devices/net/slirp_backend.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/garbage_frames.h"
#include "tests/unit/devices/net/recording_sink.h"

namespace ksbox::devices::net {
namespace {

using namespace std::chrono_literals;

using testing::RecordingSink;

// An ARP request from the guest (10.0.2.15) for the gateway (10.0.2.2).
std::vector<uint8_t> arp_request_for_gateway() {
  std::vector<uint8_t> f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x6b, 0x73, 0x62, 0x78, 0x01, 0x08, 0x06,
                            0x00, 0x01, 0x08, 0x00, 6,    4,    0x00, 0x01, 0x02, 0x6b, 0x73, 0x62, 0x78, 0x01,
                            10,   0,    2,    15,   0,    0,    0,    0,    0,    0,    10,   0,    2,    2};
  f.resize(60, 0);
  return f;
}

TEST(SlirpBackendTest, AnswersArpForTheGateway) {
  RecordingSink sink;
  SlirpBackend b({default_slirp_network(1500), true, {}});
  b.start(sink);
  ASSERT_TRUE(b.can_send());
  b.send_frame(arp_request_for_gateway());
  const auto reply = sink.wait_for(0x0806, 5s);
  ASSERT_GE(reply.size(), 42u);
  EXPECT_EQ(reply[21], 2);  // ARP reply
  EXPECT_EQ(std::vector<uint8_t>(reply.begin() + 28, reply.begin() + 32), (std::vector<uint8_t>{10, 0, 2, 2}));
}

TEST(SlirpBackendTest, PublishingAPortInUseIsASetupError) {
  SlirpOptions opts{default_slirp_network(1500), true, {}};
  PortForward f;
  ::inet_pton(AF_INET, "192.0.2.1", &f.host_addr);  // TEST-NET-1: not an address of this host
  f.host_port = 8080;
  f.guest_port = 80;
  opts.forwards.push_back(f);
  try {
    SlirpBackend b(opts);
    FAIL() << "bound an address this host does not have";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("--publish 192.0.2.1:8080:80"), std::string::npos) << e.what();
  }
}

TEST(SlirpBackendTest, SurvivesGarbageFramesAndStillAnswers) {
  RecordingSink sink;
  SlirpBackend b({default_slirp_network(65520), true, {}});
  b.start(sink);
  for (uint32_t seed : {7u, 8u, 9u, 10u, 11u}) {
    test::garbage::FrameGenerator gen(seed);
    for (int i = 0; i < 20000; ++i) {
      while (!b.can_send()) std::this_thread::sleep_for(1ms);
      b.send_frame(gen.frame());
    }
  }
  {
    std::lock_guard lock(sink.mu);
    sink.frames.clear();
  }
  b.send_frame(arp_request_for_gateway());
  EXPECT_FALSE(sink.wait_for(0x0806, 5s).empty());
  EXPECT_GT(b.fragments_dropped(), 0u);
}

}  // namespace
}  // namespace ksbox::devices::net
