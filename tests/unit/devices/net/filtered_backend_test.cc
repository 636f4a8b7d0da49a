// --network filtered's backend (filtered_backend.h) between a stand-in for
// slirp and a recording device: guest frames in; frames to the network,
// answers to the guest, upstream DNS traffic and egress log lines out.
#include "devices/net/filtered_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "devices/net/frame.h"
#include "tests/unit/devices/net/frame_builders.h"
#include "tests/unit/devices/net/recording_sink.h"
#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::net {
namespace {

using namespace testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr uint32_t kAllowedAddr = 0xc000020a, kOtherAddr = 0xc0000214;  // 192.0.2.10, 192.0.2.20

// The network side: records what the filter lets through; can hand frames to the filter.
class FakeNetwork : public NetBackend {
 public:
  struct Shared {
    std::mutex mu;
    std::vector<Bytes> sent;
    FrameSink* sink = nullptr;
  };
  explicit FakeNetwork(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  void start(FrameSink& sink) override { s_->sink = &sink; }
  bool can_send() override { return true; }
  void send_frame(std::span<const uint8_t> f) override {
    std::lock_guard lock(s_->mu);
    s_->sent.emplace_back(f.begin(), f.end());
  }
  std::vector<std::pair<std::string, uint64_t>> counters() const override { return {{"inner", 5}}; }

 private:
  std::shared_ptr<Shared> s_;
};

// A UDP socket on 127.0.0.1 standing in for the upstream resolver.
class FakeUpstream {
 public:
  FakeUpstream() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    timeval tv{5, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The next query, and where to answer it.
  Bytes receive(sockaddr_in& from) {
    Bytes b(4096);
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_.get(), b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    b.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return b;
  }
  void answer(const sockaddr_in& to, const Bytes& msg) {
    ::sendto(fd_.get(), msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

Bytes dns_query_frame(const Bytes& qname, uint16_t id = 0x1234) {
  Bytes q = dns_query(qname);
  q[0] = static_cast<uint8_t>(id >> 8);
  q[1] = static_cast<uint8_t>(id);
  return ipv4_frame(kIpProtoUdp, udp(40000, 53, q));
}

Bytes syn_frame(uint32_t dst, uint16_t port) {
  Bytes t = tcp(port, kTcpSyn);
  t[0] = 0x9c, t[1] = 0x40;                 // from port 40000
  t[4] = 0, t[5] = 0, t[6] = 0x10, t[7] = 0;  // seq 4096
  return ipv4_frame(kIpProtoTcp, t, dst);
}

bool checksums_ok(const Bytes& f) {
  const auto ip = std::span(f).subspan(14, 20);
  if (ones_complement_sum(ip) != 0xffff) return false;
  const auto seg = std::span(f).subspan(34);
  const uint32_t pseudo = ones_complement_sum(ip.subspan(12, 8)) + ip[9] + static_cast<uint32_t>(seg.size());
  return ones_complement_sum(seg, pseudo) == 0xffff;
}

class FilteredBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ksbox-filter-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    filter_.reset();
    fs::remove_all(dir_);
  }
  void make(EgressLogLimits limits = {}) {
    FilterOptions o;
    o.rules = EgressRules{{"allowed.test"}, {80, 443}, 0x0a000203, {}};
    o.dns_upstream = parse_dns_upstream(upstream_.address());
    o.mtu = 1500;
    o.egress_log = log_path();
    o.log_limits = limits;
    filter_ = std::make_unique<FilteredBackend>(std::move(o), std::make_unique<FakeNetwork>(net_));
    filter_->start(guest_);
  }
  std::string log_path() const { return (dir_ / "egress.log").string(); }
  std::vector<nlohmann::json> log_lines() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log_path());
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  size_t sent_to_network() {
    std::lock_guard lock(net_->mu);
    return net_->sent.size();
  }
  // The guest's next UDP frame from the resolver, parsed as DNS.
  std::optional<DnsMessage> wait_dns_answer(uint16_t id) {
    const auto f = guest_.wait_for(
        [id](const Bytes& frame) {
          const auto l4 = parse_l4(frame);
          const auto m = l4 && l4->protocol == kIpProtoUdp ? parse_dns(l4->payload) : std::nullopt;
          return m && m->id == id;
        },
        5s);
    if (f.empty()) return std::nullopt;
    EXPECT_TRUE(checksums_ok(f));
    const auto l4 = parse_l4(f);
    EXPECT_EQ(l4->src, 0x0a000203u);
    EXPECT_EQ(l4->sport, 53);
    EXPECT_EQ(l4->dst, 0x0a00020fu);
    EXPECT_EQ(l4->dport, 40000);
    return parse_dns(l4->payload);
  }
  // Resolves allowed.test to `addr` through the fake upstream.
  void resolve_allowed(uint32_t addr) {
    filter_->send_frame(dns_query_frame(name({"allowed", "test"}), 0x0101));
    sockaddr_in from{};
    Bytes q = upstream_.receive(from);
    ASSERT_FALSE(q.empty()) << "no query reached the upstream";
    Bytes wrong = dns_response(name({"allowed", "test"}), {kOtherAddr});
    upstream_.answer(from, wrong);  // id 0x1234: answers nothing that was asked
    Bytes a = dns_response(name({"allowed", "test"}), {addr});
    a[0] = q[0], a[1] = q[1];
    upstream_.answer(from, a);
    const auto m = wait_dns_answer(0x0101);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->a_records, std::vector<uint32_t>{addr});
  }

  fs::path dir_;
  FakeUpstream upstream_;
  std::shared_ptr<FakeNetwork::Shared> net_ = std::make_shared<FakeNetwork::Shared>();
  RecordingSink guest_;
  std::unique_ptr<FilteredBackend> filter_;
};

TEST_F(FilteredBackendTest, DeniedNamesGetNxdomainAndNeverLeave) {
  make();
  filter_->send_frame(dns_query_frame(name({"blocked", "test"}), 0x4242));
  const auto m = wait_dns_answer(0x4242);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->response);
  EXPECT_EQ(m->rcode, 3);
  EXPECT_EQ(m->qname, "blocked.test");
  EXPECT_TRUE(m->a_records.empty());
  EXPECT_EQ(sent_to_network(), 0u);
  EXPECT_EQ(filter_->stats().nxdomain, 1u);
  filter_.reset();
  const auto lines = log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["allowed"], false);
  EXPECT_EQ(lines[0]["kind"], "dns");
  EXPECT_EQ(lines[0]["name"], "blocked.test");
  EXPECT_TRUE(lines[0].contains("time"));
}

TEST_F(FilteredBackendTest, AllowedLookupsGoUpstreamAndTheirAddressesBecomeConnectable) {
  make();
  // Before the lookup the address is just a literal IP: reset, not sent.
  filter_->send_frame(syn_frame(kAllowedAddr, 443));
  EXPECT_EQ(sent_to_network(), 0u);
  resolve_allowed(kAllowedAddr);
  EXPECT_EQ(sent_to_network(), 0u);  // DNS never goes to slirp

  filter_->send_frame(syn_frame(kAllowedAddr, 443));
  EXPECT_EQ(sent_to_network(), 1u);
  filter_->send_frame(syn_frame(kAllowedAddr, 22));  // allowed host, other port
  filter_->send_frame(syn_frame(kOtherAddr, 443));   // an address that was not looked up
  EXPECT_EQ(sent_to_network(), 1u);

  // Every denied SYN got RST|ACK for its sequence number, checksums right.
  const auto is_rst = [](const Bytes& f) {
    const auto l4 = parse_l4(f);
    return l4 && l4->protocol == kIpProtoTcp && l4->tcp_flags == (kTcpRst | kTcpAck);
  };
  guest_.wait_for([&](const Bytes&) { return std::count_if(guest_.frames.begin(), guest_.frames.end(), is_rst) >= 3; },
                  5s);
  std::vector<Bytes> resets;
  {
    std::lock_guard lock(guest_.mu);
    std::copy_if(guest_.frames.begin(), guest_.frames.end(), std::back_inserter(resets), is_rst);
  }
  ASSERT_EQ(resets.size(), 3u);
  const auto rst = parse_l4(resets[1]);
  EXPECT_EQ(rst->src, kAllowedAddr);
  EXPECT_EQ(rst->sport, 22);
  EXPECT_EQ(rst->dst, 0x0a00020fu);
  EXPECT_EQ(rst->dport, 40000);
  EXPECT_EQ(resets[1][14 + 20 + 8], 0);  // ack = 4097
  EXPECT_EQ(resets[1][14 + 20 + 10], 0x10);
  EXPECT_EQ(resets[1][14 + 20 + 11], 0x01);
  EXPECT_TRUE(checksums_ok(resets[1]));
  EXPECT_EQ(Bytes(resets[1].begin(), resets[1].begin() + 6), (Bytes{2, 0, 0, 0, 0, 2}));  // to the guest's MAC

  // Frames from the network reach the guest unchanged.
  const Bytes in = ipv4_frame(kIpProtoTcp, tcp(40000, kTcpSyn | kTcpAck), 0x0a00020f);
  net_->sink->receive_frame(in);
  EXPECT_FALSE(guest_.wait_for([&](const Bytes& f) { return f == in; }, 5s).empty());

  const auto st = filter_->stats();
  EXPECT_EQ(st.resets, 3u);
  EXPECT_EQ(st.dns_forwarded, 1u);
  EXPECT_EQ(st.dns_answered, 1u);
  filter_.reset();
  const auto lines = log_lines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0]["reason"], "address not returned by an allowed lookup");
  EXPECT_EQ(lines[1]["kind"], "dns");
  EXPECT_EQ(lines[1]["allowed"], true);
  EXPECT_EQ(lines[2]["kind"], "connect");
  EXPECT_EQ(lines[2]["allowed"], true);
  EXPECT_EQ(lines[2]["name"], "allowed.test");
  EXPECT_EQ(lines[2]["dst"], "192.0.2.10");
  EXPECT_EQ(lines[3]["reason"], "port not allowed");
  EXPECT_EQ(lines[4]["dst"], "192.0.2.20");
}

TEST_F(FilteredBackendTest, OtherResolversAndOtherUdpAreDroppedSilently) {
  make();
  filter_->send_frame(ipv4_frame(kIpProtoUdp, udp(40000, 53, dns_query(name({"allowed", "test"}))), kOtherAddr));
  filter_->send_frame(ipv4_frame(kIpProtoUdp, udp(40000, 443, {1, 2, 3}), kOtherAddr));
  filter_->send_frame(ipv4_frame(kIpProtoIcmp, Bytes(8, 0), kOtherAddr));
  filter_->send_frame(Bytes(10, 0xff));  // not even an Ethernet header
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(sent_to_network(), 0u);
  EXPECT_EQ(guest_.count(), 0u);
  EXPECT_EQ(filter_->stats().dropped, 4u);
  // The control socket's names for them, and the inner backend's after.
  const auto counters = filter_->counters();
  ASSERT_FALSE(counters.empty());
  EXPECT_NE(std::find(counters.begin(), counters.end(), std::pair<std::string, uint64_t>{"filter_dropped", 4}),
            counters.end());
  EXPECT_EQ(counters.back(), (std::pair<std::string, uint64_t>{"inner", 5}));
  filter_.reset();
  EXPECT_EQ(log_lines().size(), 4u);
}

TEST_F(FilteredBackendTest, TheLogIsRateLimited) {
  make({.burst = 5, .lines_per_second = 0.001, .max_bytes = 1u << 20});
  for (int i = 0; i < 50; ++i) filter_->send_frame(syn_frame(kOtherAddr, 443));
  filter_.reset();
  const auto lines = log_lines();
  ASSERT_EQ(lines.size(), 6u);  // the suppressed count waited for a token, then came last
  EXPECT_EQ(lines[5]["kind"], "suppressed");
  EXPECT_EQ(lines[5]["count"], 45);
}

TEST(EgressLogTest, BurstThenSuppressedCountThenRate) {
  const auto path = fs::temp_directory_path() / ("ksbox-egress-log-" + std::to_string(::getpid()));
  fs::remove(path);
  std::chrono::nanoseconds now{0};
  {
    EgressLog log(path.string(), {.burst = 3, .lines_per_second = 1, .max_bytes = 1u << 20}, [&] { return now; });
    const EgressEvent e{false, "connect", "", 0x01020304, 443, "address not returned by an allowed lookup"};
    for (int i = 0; i < 10; ++i) log.record(e);
    EXPECT_EQ(log.lines_written(), 3u);
    EXPECT_TRUE(log.has_suppressed());
    now += std::chrono::milliseconds(2500);  // 2.5 tokens
    log.record(e);
    EXPECT_EQ(log.lines_written(), 5u);  // "suppressed 7", then this one
    EXPECT_EQ(log.suppressed_total(), 7u);
    log.record(e);  // half a token left
    EXPECT_TRUE(log.has_suppressed());
    now += std::chrono::seconds(1);
    log.flush_suppressed();
    EXPECT_FALSE(log.has_suppressed());
  }
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[3]["kind"], "suppressed");
  EXPECT_EQ(lines[3]["count"], 7);
  EXPECT_EQ(lines[4]["kind"], "connect");
  EXPECT_EQ(lines[5]["count"], 1);
  fs::remove(path);
}

TEST(EgressLogTest, ASizeCapRotatesTheFile) {
  const auto path = fs::temp_directory_path() / ("ksbox-egress-rot-" + std::to_string(::getpid()));
  fs::remove(path);
  fs::remove(path.string() + ".1");
  {
    EgressLog log(path.string(), {.burst = 1000, .lines_per_second = 1, .max_bytes = 1000});
    for (int i = 0; i < 30; ++i) log.record({true, "dns", "api.github.com", 0x0a000203, 53, ""});
  }
  EXPECT_LE(fs::file_size(path), 1000u);
  EXPECT_LE(fs::file_size(path.string() + ".1"), 1000u);
  EXPECT_GT(fs::file_size(path.string() + ".1"), 500u);
  fs::remove(path);
  fs::remove(path.string() + ".1");
}

TEST(DnsUpstreamTest, AddressesAndPorts) {
  auto u = parse_dns_upstream("192.0.2.1");
  EXPECT_EQ(u.addr.ss_family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&u.addr)->sin_port), 53);
  u = parse_dns_upstream("127.0.0.1:5353");
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&u.addr)->sin_port), 5353);
  u = parse_dns_upstream("[::1]:5353");
  EXPECT_EQ(u.addr.ss_family, AF_INET6);
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in6*>(&u.addr)->sin6_port), 5353);
  EXPECT_EQ(parse_dns_upstream("::1").addr.ss_family, AF_INET6);
  for (const char* bad : {"", "dns.google", "1.2.3.4:0", "1.2.3.4:70000", "[::1", "1.2.3.4:x"})
    EXPECT_THROW(parse_dns_upstream(bad), ksbox::Error) << bad;
}

}  // namespace
}  // namespace ksbox::devices::net
