// QueueNotifier: the device thread hands the device's own host events (I/O
// completions) to on_host_event(), besides the queue kicks.
#include "devices/virtio/queue_notifier.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "fake_driver.h"

namespace ksbox::devices::virtio {
namespace {

// Counts host events, draining its eventfd the way a device must.
class HostEventDevice : public VirtioDevice {
 public:
  HostEventDevice() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  uint32_t device_type() const override { return 2; }
  uint64_t device_features() const override { return feature_bit(VIRTIO_F_VERSION_1); }
  std::span<const uint16_t> queue_max_sizes() const override { return sizes_; }
  uint32_t config_size() const override { return 0; }
  void read_config(uint32_t, std::span<uint8_t>) override {}
  void write_config(uint32_t, std::span<const uint8_t>) override {}
  bool activate(const ActivateContext&) override { return true; }
  void reset() override {}
  void process_queue(uint16_t) override {}
  int host_event_fd() const override { return fd_.get(); }
  void on_host_event() override {
    uint64_t n;
    if (::read(fd_.get(), &n, sizeof n) == sizeof n) events += static_cast<int>(n);
  }
  void fire(uint64_t n) { ASSERT_EQ(::write(fd_.get(), &n, sizeof n), static_cast<ssize_t>(sizeof n)); }

  std::atomic<int> events{0};

 private:
  std::array<uint16_t, 1> sizes_{8};
  UniqueFd fd_;
};

TEST(QueueNotifier, ServesTheDevicesHostEventFd) {
  GuestMemory mem = testing::make_two_region_memory();
  auto dev = std::make_shared<HostEventDevice>();
  MmioTransport transport(mem, dev, [] {});
  std::vector<UniqueFd> kicks;
  kicks.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  {
    QueueNotifier notifier(transport, std::move(kicks), dev);
    dev->fire(2);
    for (int i = 0; i < 500 && dev->events < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(dev->events, 2);
    dev->fire(1);
    for (int i = 0; i < 500 && dev->events < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(dev->events, 3);
  }
  // Stopped: nothing serves the fd any more.
  dev->fire(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(dev->events, 3);
}

}  // namespace
}  // namespace ksbox::devices::virtio
