// The register page: while the device runs, the guest reads registers from a
// page instead of exiting, so that page must always read as the registers do.
#include <linux/virtio_mmio.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "devices/virtio/mmio_transport.h"
#include "mmio_fixture.h"

namespace ksbox::devices::virtio {
namespace {

class FakePage : public RegisterPage {
 public:
  alignas(4096) std::array<uint8_t, kSize> page{};
  bool mapped = false;
  bool refuse = false;
  std::vector<bool> calls;

  std::span<uint8_t, kSize> bytes() override { return page; }
  bool set_mapped(bool m) noexcept override {
    calls.push_back(m);
    if (refuse) return false;
    mapped = m;
    return true;
  }
  uint32_t word(uint64_t off) const {
    uint32_t v;
    std::memcpy(&v, &page[off], 4);
    return v;
  }
};

constexpr uint64_t kReadable[] = {
    VIRTIO_MMIO_MAGIC_VALUE,      VIRTIO_MMIO_VERSION,        VIRTIO_MMIO_DEVICE_ID,
    VIRTIO_MMIO_VENDOR_ID,        VIRTIO_MMIO_DEVICE_FEATURES, VIRTIO_MMIO_QUEUE_NUM_MAX,
    VIRTIO_MMIO_QUEUE_READY,      VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_STATUS,
    VIRTIO_MMIO_SHM_LEN_LOW,      VIRTIO_MMIO_SHM_LEN_HIGH,    VIRTIO_MMIO_SHM_BASE_LOW,
    VIRTIO_MMIO_SHM_BASE_HIGH,    VIRTIO_MMIO_CONFIG_GENERATION};

class RegisterPageTest : public MmioTransportTest {
 protected:
  FakePage* page = nullptr;
  std::vector<uint32_t> status_at_irq;  // what the page said when each interrupt went out

  void SetUp() override {
    t = std::make_unique<MmioTransport>(mem, dev, [this] {
      ++irqs;
      status_at_irq.push_back(page->word(VIRTIO_MMIO_INTERRUPT_STATUS));
    });
    auto p = std::make_unique<FakePage>();
    page = p.get();
    t->set_register_page(std::move(p));
  }

  // Every readable register and every config byte, as the page shows them,
  // equal what a read that exits returns.
  void expect_page_matches_registers() {
    for (uint64_t off : kReadable) EXPECT_EQ(page->word(off), rd(off)) << "register " << std::hex << off;
    for (uint32_t i = 0; i < dev->config.size(); ++i) {
      std::array<uint8_t, 1> b{};
      t->read(MmioTransport::kConfigOffset + i, b);
      EXPECT_EQ(page->page[MmioTransport::kConfigOffset + i], b[0]) << "config byte " << i;
    }
  }
};

TEST_F(RegisterPageTest, ShownFromDriverOkUntilReset) {
  negotiate(kV1 | kIndirectF);
  setup_queue(1, 16);
  EXPECT_FALSE(page->mapped);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk | kDrvOk);
  EXPECT_TRUE(page->mapped);
  EXPECT_TRUE(t->register_page_mapped());
  expect_page_matches_registers();
  wr(VIRTIO_MMIO_STATUS, 0);
  EXPECT_FALSE(page->mapped);
  EXPECT_EQ(page->calls, (std::vector<bool>{true, false}));
  EXPECT_EQ(t->stats().malformed_accesses, 0u);
}

TEST_F(RegisterPageTest, NotShownWhenActivationFails) {
  dev->activate_result = false;
  negotiate();
  setup_queue(1, 16);
  wr(VIRTIO_MMIO_STATUS, kAck | kDrv | kFeOk | kDrvOk);
  EXPECT_FALSE(page->mapped);
  EXPECT_TRUE(page->calls.empty());
}

TEST_F(RegisterPageTest, InterruptBitsAreOnThePageBeforeTheInterrupt) {
  bring_up();
  t->interrupt().signal_used_queue(1);
  t->interrupt().signal_config_change();
  ASSERT_EQ(status_at_irq.size(), 2u);
  EXPECT_EQ(status_at_irq[0], uint32_t{VIRTIO_MMIO_INT_VRING});
  EXPECT_EQ(status_at_irq[1], uint32_t{VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG});
  wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
  EXPECT_EQ(page->word(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_VRING});
  expect_page_matches_registers();
}

TEST_F(RegisterPageTest, ConfigChangesReachThePageWithANewGeneration) {
  bring_up();
  const uint32_t gen = page->word(VIRTIO_MMIO_CONFIG_GENERATION);
  dev->config[3] = 0x77;  // the device changes its config, then says so
  t->interrupt().signal_config_change();
  EXPECT_EQ(page->page[MmioTransport::kConfigOffset + 3], 0x77);
  EXPECT_NE(page->word(VIRTIO_MMIO_CONFIG_GENERATION), gen);
  expect_page_matches_registers();
  // The driver's own config writes show too.
  std::array<uint8_t, 2> b{0xab, 0xcd};
  t->write(MmioTransport::kConfigOffset + 6, b);
  EXPECT_EQ(page->page[MmioTransport::kConfigOffset + 7], 0xcd);
}

TEST_F(RegisterPageTest, SelectorWritesAndNeedsResetShowOnThePage) {
  bring_up();
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  EXPECT_EQ(page->word(VIRTIO_MMIO_QUEUE_NUM_MAX), 256u);
  EXPECT_EQ(page->word(VIRTIO_MMIO_QUEUE_READY), 0u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 1);
  EXPECT_EQ(page->word(VIRTIO_MMIO_QUEUE_NUM_MAX), 16u);
  EXPECT_EQ(page->word(VIRTIO_MMIO_QUEUE_READY), 1u);
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  expect_page_matches_registers();
  t->interrupt().signal_needs_reset();
  EXPECT_EQ(page->word(VIRTIO_MMIO_STATUS), kAck | kDrv | kFeOk | kDrvOk | kNeedsReset);
  EXPECT_EQ(status_at_irq.back(), uint32_t{VIRTIO_MMIO_INT_CONFIG});
}

TEST_F(RegisterPageTest, AMapThatFailsLeavesReadsExiting) {
  page->refuse = true;
  bring_up();
  EXPECT_FALSE(t->register_page_mapped());
  t->interrupt().signal_used_queue(1);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_VRING});
}

TEST_F(RegisterPageTest, AnUnmapThatFailsKeepsThePageCurrent) {
  bring_up();
  page->refuse = true;
  wr(VIRTIO_MMIO_STATUS, 0);  // reset: the page stays in the guest's view
  EXPECT_TRUE(page->mapped);
  EXPECT_EQ(page->word(VIRTIO_MMIO_STATUS), 0u);
  negotiate();
  EXPECT_EQ(page->word(VIRTIO_MMIO_STATUS), kAck | kDrv | kFeOk);
  expect_page_matches_registers();
}

}  // namespace
}  // namespace ksbox::devices::virtio
