#include "devices/legacy/serial.h"

namespace ksbox::devices {
namespace {
// Register offsets.
constexpr uint64_t kData = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;
constexpr uint8_t kIerRxData = 0x01, kIerThre = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThre = 0x02, kIirRxData = 0x04, kIirFifo = 0xc0;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;
}  // namespace

bool Serial::irq_wanted() const {
  return ((ier_ & kIerRxData) && !rx_.empty()) || ((ier_ & kIerThre) && thre_pending_);
}

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  bool raise;
  {
    std::lock_guard lock(mu_);
    data[0] = read_locked(offset);
    raise = irq_wanted();
  }
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
  if (raise) irq_();
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool raise;
  {
    std::lock_guard lock(mu_);
    const bool before = irq_wanted();
    write_locked(offset, data[0]);
    // Edge-triggered line: pulse on a new reason to interrupt.
    raise = irq_wanted() && (!before || offset == kData || offset == kIer);
  }
  if (raise) irq_();
}

uint8_t Serial::read_locked(uint64_t offset) {
  switch (offset) {
    case kData:
      if (dlab()) return dll_;
      if (rx_.empty()) return 0;
      {
        const uint8_t b = rx_.front();
        rx_.pop_front();
        return b;
      }
    case kIer:
      return dlab() ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t iir = kIirNone;
      if ((ier_ & kIerRxData) && !rx_.empty()) {
        iir = kIirRxData;
      } else if ((ier_ & kIerThre) && thre_pending_) {
        iir = kIirThre;
        thre_pending_ = false;  // reading IIR acknowledges THR-empty
      }
      return static_cast<uint8_t>(iir | (fifo_enabled_ ? kIirFifo : 0));
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return static_cast<uint8_t>(kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDataReady));
    case kMsr:
      if (loopback())
        return static_cast<uint8_t>(((mcr_ & kMcrRts) ? kMsrCts : 0) | ((mcr_ & kMcrDtr) ? kMsrDsr : 0) |
                                    ((mcr_ & kMcrOut1) ? kMsrRi : 0) | ((mcr_ & kMcrOut2) ? kMsrDcd : 0));
      return kMsrDcd | kMsrDsr | kMsrCts;
    case kScr:
      return scr_;
    default:
      return 0xff;
  }
}

void Serial::write_locked(uint64_t offset, uint8_t v) {
  switch (offset) {
    case kData:
      if (dlab()) {
        dll_ = v;
        return;
      }
      if (loopback()) {
        if (rx_.size() < kRxFifoSize) rx_.push_back(v);
      } else {
        sink_(std::span<const uint8_t>(&v, 1));
      }
      thre_pending_ = true;  // transmission is instant
      return;
    case kIer:
      if (dlab()) {
        dlm_ = v;
        return;
      }
      if ((v & kIerThre) && !(ier_ & kIerThre)) thre_pending_ = true;
      ier_ = v & 0x0f;
      return;
    case kIirFcr:
      fifo_enabled_ = v & kFcrEnable;
      if (v & kFcrClearRx) rx_.clear();
      return;
    case kLcr:
      lcr_ = v;
      return;
    case kMcr:
      mcr_ = v & 0x1f;
      return;
    case kScr:
      scr_ = v;
      return;
    default:
      return;  // LSR/MSR are read-only
  }
}

void Serial::enqueue_input(std::span<const uint8_t> bytes) {
  bool raise;
  {
    std::lock_guard lock(mu_);
    for (uint8_t b : bytes) {
      if (rx_.size() >= kRxFifoSize) break;
      rx_.push_back(b);
    }
    raise = irq_wanted();
  }
  if (raise) irq_();
}

}  // namespace ksbox::devices
