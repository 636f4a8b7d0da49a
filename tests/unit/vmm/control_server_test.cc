#include "vmm/control_server.h"

#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "devices/balloon/virtio_balloon.h"
#include "devices/fs/virtio_fs.h"
#include "devices/net/virtio_net.h"
#include "devices/rng/rng.h"
#include "devices/virtio/mmio_transport.h"

namespace ksbox {
namespace {

using nlohmann::json;

TEST(ControlRequest, StatusReportsThisProcess) {
  VmControl ctl;
  const json r = json::parse(handle_control_request(R"({"cmd":"status"})", {"proj", 2, 512}, ctl));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["pid"], ::getpid());
  EXPECT_EQ(r["name"], "proj");
  EXPECT_EQ(r["state"], "running");
  EXPECT_EQ(r["vcpus"], 2);
  EXPECT_EQ(r["memory_mib"], 512);
  EXPECT_FALSE(ctl.stopping());
}

TEST(ControlRequest, StopAsksTheVmToStopCleanly) {
  VmControl ctl;
  const json r = json::parse(handle_control_request(R"({"cmd":"stop"})", {}, ctl));
  EXPECT_EQ(r["ok"], true);
  ASSERT_TRUE(ctl.stopping());
  EXPECT_EQ(ctl.status()->code, kExitGuestReset);
}

TEST(ControlRequest, PauseTakesALeaseThatIsClampedAndResumeEndsIt) {
  VmControl ctl;  // no vCPUs: the pause is in force at once
  json r = json::parse(handle_control_request(R"({"cmd":"pause","lease_ms":99999999})", {}, ctl));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["lease_ms"], kMaxPauseLease.count());
  r = json::parse(handle_control_request(R"({"cmd":"pause","lease_ms":"soon"})", {}, ctl));
  EXPECT_EQ(r["lease_ms"], kDefaultPauseLease.count());
  EXPECT_EQ(json::parse(handle_control_request(R"({"cmd":"resume"})", {}, ctl))["ok"], true);
  EXPECT_FALSE(ctl.stopping());
}

TEST(ControlRequest, MalformedRequestsAreRefused) {
  VmControl ctl;
  for (const char* bad : {"", "{", "[]", "42", R"({"cmd":7})", R"({"cmd":"reboot"})", "\xff\xfe"}) {
    const json r = json::parse(handle_control_request(bad, {}, ctl));
    EXPECT_EQ(r["ok"], false) << bad;
    EXPECT_TRUE(r["error"].is_string()) << bad;
  }
  EXPECT_FALSE(ctl.stopping());
}

TEST(ControlRequest, BalloonReportsAndSetsTheTargetWithinTheVmsMemory) {
  VmControl ctl;
  EXPECT_EQ(json::parse(handle_control_request(R"({"cmd":"balloon"})", {}, ctl))["ok"], false)
      << "no balloon (--balloon off)";
  devices::balloon::VirtioBalloon balloon;
  ControlInfo info{"box", 1, 512};
  info.balloon = &balloon;
  json r = json::parse(handle_control_request(R"({"cmd":"balloon"})", info, ctl));
  EXPECT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["target_mib"], 0);
  EXPECT_EQ(r["actual_mib"], 0);
  EXPECT_TRUE(r["stats"].is_object());
  r = json::parse(handle_control_request(R"({"cmd":"balloon","target_mib":300})", info, ctl));
  EXPECT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["target_mib"], 300);
  EXPECT_EQ(balloon.target_pages(), 300u * 256);
  for (const char* bad : {R"({"cmd":"balloon","target_mib":513})", R"({"cmd":"balloon","target_mib":-1})",
                          R"({"cmd":"balloon","target_mib":"all"})", R"({"cmd":"balloon","target_mib":1.5})"}) {
    EXPECT_EQ(json::parse(handle_control_request(bad, info, ctl))["ok"], false) << bad;
  }
  EXPECT_EQ(balloon.target_pages(), 300u * 256);
}

TEST(ControlRequest, FsListsEveryShareWithItsCounters) {
  VmControl ctl;
  json r = json::parse(handle_control_request(R"({"cmd":"fs"})", {}, ctl));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["shares"], json::array());
  const auto dir = std::filesystem::temp_directory_path();
  devices::fs::VirtioFs a("workspace", dir.string()), b("cache", dir.string());
  ControlInfo info{"box", 1, 512};
  info.shares = {&a, &b};
  r = json::parse(handle_control_request(R"({"cmd":"fs"})", info, ctl));
  ASSERT_EQ(r["shares"].size(), 2u) << r.dump();
  EXPECT_EQ(r["shares"][0]["tag"], "workspace");
  EXPECT_EQ(r["shares"][1]["tag"], "cache");
  EXPECT_EQ(r["shares"][0]["requests"], 0);
  EXPECT_EQ(r["shares"][0]["ops"], json::object());  // served nothing yet
  EXPECT_EQ(r["shares"][0]["malformed"], json::object());
}

TEST(ControlRequest, NetReportsTheDeviceAndItsBackendCounters) {
  VmControl ctl;
  json r = json::parse(handle_control_request(R"({"cmd":"net"})", {}, ctl));
  EXPECT_EQ(r, (json{{"ok", true}, {"network", false}}));

  class CountingBackend : public devices::net::NetBackend {
   public:
    void start(devices::net::FrameSink&) override {}
    bool can_send() override { return true; }
    void send_frame(std::span<const uint8_t>) override {}
    std::vector<std::pair<std::string, uint64_t>> counters() const override { return {{"answered", 7}}; }
  };
  devices::net::VirtioNet net({2, 0, 0, 0, 0, 1}, 1500, std::make_unique<CountingBackend>());
  ControlInfo info{"box", 1, 512};
  info.net = &net;
  r = json::parse(handle_control_request(R"({"cmd":"net"})", info, ctl));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["network"], true);
  EXPECT_EQ(r["tx"]["frames"], 0);
  EXPECT_EQ(r["tx"]["refused"], json::object());
  EXPECT_EQ(r["rx"]["dropped"]["backlog"], 0);
  EXPECT_EQ(r["backend"], (json{{"answered", 7}}));
}

TEST(ControlRequest, DevicesListsEachTransportsExitedAccesses) {
  VmControl ctl;
  json r = json::parse(handle_control_request(R"({"cmd":"devices"})", {}, ctl));
  EXPECT_EQ(r, (json{{"ok", true}, {"devices", json::array()}}));
  GuestMemory mem({{GuestAddress(0), 1 << 20}});
  devices::virtio::MmioTransport rng(mem, std::make_shared<devices::VirtioRng>(), {});
  constexpr uint8_t kAcknowledge = VIRTIO_CONFIG_S_ACKNOWLEDGE;
  std::array<uint8_t, 4> word{};
  rng.read(0, word);
  rng.read(4, word);
  rng.write(VIRTIO_MMIO_STATUS, std::array<uint8_t, 4>{kAcknowledge, 0, 0, 0});
  ControlInfo info{"box", 1, 512};
  info.transports = {&rng};
  r = json::parse(handle_control_request(R"({"cmd":"devices"})", info, ctl));
  ASSERT_EQ(r["devices"].size(), 1u) << r.dump();
  EXPECT_EQ(r["devices"][0], (json{{"slot", 0},         {"type", VIRTIO_ID_RNG}, {"activated", false},
                                   {"register_page", false}, {"reads", 2},        {"writes", 1},
                                   {"malformed", 0},     {"refused", 0}}));
}

std::string ask(const std::string& path, const std::string& request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(ControlServer, ServesRequestsAndRemovesItsSocket) {
  const auto dir = std::filesystem::temp_directory_path() / ("ksbox-ctl-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir / "ctl.sock";
  VmControl ctl;
  {
    ControlServer server(path, {"box", 1, 256}, ctl);
    EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    const json st = json::parse(ask(path, "{\"cmd\":\"status\"}\n"));
    EXPECT_EQ(st["name"], "box");
    // A request over the size limit gets no answer, and the server goes on.
    EXPECT_EQ(ask(path, std::string(kMaxControlRequest + 10, 'x') + "\n"), "");
    EXPECT_EQ(json::parse(ask(path, "{\"cmd\":\"stop\"}\n"))["ok"], true);
    EXPECT_TRUE(ctl.stopping());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ksbox
