// A VirtioVsock on a fresh temporary directory, with a fake guest driver.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "devices/vsock/vsock.h"
#include "tests/unit/devices/vsock/fake_vsock_guest.h"

namespace ksbox::devices::vsock::testing {

// A new directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ksbox-vsock-XXXXXX";
    if (::mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class VsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.path() + "/v.sock";
    dev_ = std::make_unique<VirtioVsock>(path_, kGuestCid, limits());
  }
  void TearDown() override {
    guest_.reset();  // resets the device before its memory goes
    dev_.reset();
  }
  virtual MuxerLimits limits() const { return {}; }

  FakeVsockGuest& start_guest(Layout rx_layout = Layout::kSplit, size_t rx_buffers = 64,
                              std::optional<uint64_t> features = {}) {
    guest_ = std::make_unique<FakeVsockGuest>(*dev_, rx_layout, features);
    guest_->activate(rx_buffers);
    return *guest_;
  }

  // A host client that sent "CONNECT <port>\n" (then `extra`), and what the
  // guest received next (nullopt if nothing came).
  struct HostConnect {
    UniqueFd fd;
    std::optional<Packet> req;
  };
  HostConnect send_connect(uint32_t port, std::string_view extra = {}) {
    UniqueFd fd = connect_host(path_);
    EXPECT_TRUE(fd);
    EXPECT_TRUE(write_all(fd.get(), "CONNECT " + std::to_string(port) + "\n" + std::string(extra)));
    return {std::move(fd), guest_->recv()};
  }

  // Host-initiated stream to guest `port`: CONNECT, the REQUEST seen by the
  // guest, its RESPONSE, then "OK <host port>" on the host socket.
  struct HostStream {
    UniqueFd fd;
    GuestStream guest;
  };
  HostStream open_host_stream(uint32_t port) {
    auto [fd, req] = send_connect(port);
    EXPECT_TRUE(req.has_value());
    EXPECT_EQ(req ? req->hdr.op : 0, VIRTIO_VSOCK_OP_REQUEST);
    GuestStream s{*guest_, port, req ? req->hdr.src_port : 0};
    EXPECT_EQ(req ? req->hdr.dst_port : 0, port);
    if (req) s.observe(*req);
    s.send(VIRTIO_VSOCK_OP_RESPONSE);
    EXPECT_EQ(read_line(fd.get()), "OK " + std::to_string(s.host_port));
    return {std::move(fd), s};
  }

  // The guest's next packet is an RST for `s` (wrap in ASSERT_NO_FATAL_FAILURE).
  void expect_rst_for(const GuestStream& s) {
    auto rst = guest_->recv();
    ASSERT_TRUE(rst);
    EXPECT_EQ(rst->hdr.op, VIRTIO_VSOCK_OP_RST);
    EXPECT_TRUE(s.is_for_me(*rst));
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<VirtioVsock> dev_;
  std::unique_ptr<FakeVsockGuest> guest_;
};

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

inline std::string str(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

}  // namespace ksbox::devices::vsock::testing
