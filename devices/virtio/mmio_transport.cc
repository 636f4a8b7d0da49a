#include "devices/virtio/mmio_transport.h"

#include <linux/virtio_mmio.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <optional>

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::devices::virtio {
namespace {

constexpr uint32_t kAck = VIRTIO_CONFIG_S_ACKNOWLEDGE;
constexpr uint32_t kDriver = VIRTIO_CONFIG_S_DRIVER;
constexpr uint32_t kFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
constexpr uint32_t kDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
constexpr uint32_t kNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
constexpr uint32_t kFailed = VIRTIO_CONFIG_S_FAILED;
constexpr uint32_t kOrderedBits = kAck | kDriver | kFeaturesOk | kDriverOk;
constexpr uint32_t kDriverBits = kOrderedBits | kFailed;

// The ordered status bits must always be a prefix of the init sequence.
constexpr bool is_ordered_prefix(uint32_t s) {
  s &= kOrderedBits;
  return s == 0 || s == kAck || s == (kAck | kDriver) || s == (kAck | kDriver | kFeaturesOk) ||
         s == kOrderedBits;
}

// Feature bits that belong to the transport/ring layer (legacy 24..27 and
// the reserved transport range 28..40). Only those we implement are offered.
constexpr uint64_t kTransportRange = ((uint64_t{1} << (VIRTIO_TRANSPORT_F_END + 1)) - 1) &
                                     ~((uint64_t{1} << 24) - 1);
constexpr uint64_t kTransportSupported = feature_bit(VIRTIO_RING_F_INDIRECT_DESC) |
                                         feature_bit(VIRTIO_RING_F_EVENT_IDX) | feature_bit(VIRTIO_F_VERSION_1);

uint64_t replace_half(uint64_t v, bool high, uint32_t half) {
  return high ? (v & 0xffffffffull) | (uint64_t{half} << 32) : (v & ~0xffffffffull) | half;
}

}  // namespace

MmioTransport::MmioTransport(const GuestMemory& mem, std::shared_ptr<VirtioDevice> device, IrqTrigger irq)
    : mem_(mem),
      device_(std::move(device)),
      irq_(std::move(irq)),
      offered_features_(device_->device_features() & (~kTransportRange | kTransportSupported)) {
  if (!(offered_features_ & feature_bit(VIRTIO_F_VERSION_1)))
    throw Error(fmt::format("virtio device type {} does not offer VIRTIO_F_VERSION_1", device_->device_type()));
  if (device_->config_size() > kWindowSize - kConfigOffset)
    throw Error(fmt::format("virtio device type {} config space ({} bytes) does not fit the MMIO window",
                            device_->device_type(), device_->config_size()));
  const auto sizes = device_->queue_max_sizes();
  queues_.reserve(sizes.size());
  for (uint16_t max : sizes) queues_.emplace_back(max);
}

MmioTransport::~MmioTransport() {
  if (activated_.load()) device_->reset();
}

uint64_t MmioTransport::driver_features() const {
  std::lock_guard lock(mu_);
  return driver_features_;
}

MmioStats MmioTransport::stats() const {
  return {malformed_.get(),    refused_.get(),     features_rejected_.get(), queue_configs_refused_.get(),
          bad_notifies_.get(), needs_reset_.get(), reads_.get(),             writes_.get()};
}

// --- BusDevice -------------------------------------------------------------

bool MmioTransport::config_access_ok(uint64_t offset, uint64_t n) {
  const uint64_t off = offset - kConfigOffset;
  if ((n != 1 && n != 2 && n != 4 && n != 8) || off > device_->config_size() ||
      n > device_->config_size() - off) {
    malformed_.inc();
    return false;
  }
  return true;
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  reads_.inc();
  std::fill(data.begin(), data.end(), uint8_t{0});
  if (offset >= kConfigOffset) {
    if (!config_access_ok(offset, data.size())) return;
    std::lock_guard lock(mu_);
    device_->read_config(static_cast<uint32_t>(offset - kConfigOffset), data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    malformed_.inc();
    return;
  }
  uint32_t v;
  {
    std::lock_guard lock(mu_);
    v = read_register(offset);
  }
  std::memcpy(data.data(), &v, sizeof(v));  // little-endian host (ring.h)
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  writes_.inc();
  if (offset >= kConfigOffset) {
    if (!config_access_ok(offset, data.size())) return;
    std::lock_guard lock(mu_);
    device_->write_config(static_cast<uint32_t>(offset - kConfigOffset), data);
    if (page_mapped_) render_page();
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    malformed_.inc();
    return;
  }
  uint32_t v;
  std::memcpy(&v, data.data(), sizeof(v));
  if (offset == VIRTIO_MMIO_QUEUE_NOTIFY) {
    notify(v);  // without the register lock: the device may take time
    return;
  }
  std::lock_guard lock(mu_);
  write_register(offset, v);
  if (page_mapped_) render_page();
}

uint32_t MmioTransport::read_register(uint64_t offset) {
  if (auto v = register_value(offset)) return *v;
  malformed_.inc();  // write-only, legacy (v1) or unknown register
  return 0;
}

std::optional<uint32_t> MmioTransport::register_value(uint64_t offset) const {
  const Queue* q = queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
  switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE: return kMagic;
    case VIRTIO_MMIO_VERSION: return kVersion;
    case VIRTIO_MMIO_DEVICE_ID: return device_->device_type();
    case VIRTIO_MMIO_VENDOR_ID: return kVendorId;
    case VIRTIO_MMIO_DEVICE_FEATURES:
      if (device_features_sel_ > 1) return 0;
      return static_cast<uint32_t>(offered_features_ >> (32 * device_features_sel_));
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? q->max_size() : 0;
    case VIRTIO_MMIO_QUEUE_READY: return q && q->ready() ? 1 : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return interrupt_status_.load();
    case VIRTIO_MMIO_STATUS: return status_.load();
    // No shared memory regions: a length of -1 says "no such region".
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH: return 0xffffffff;
    case VIRTIO_MMIO_CONFIG_GENERATION: return config_generation_.load();
    default: return std::nullopt;
  }
}

void MmioTransport::write_register(uint64_t offset, uint32_t v) {
  switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: device_features_sel_ = v; return;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: driver_features_sel_ = v; return;
    case VIRTIO_MMIO_DRIVER_FEATURES: {
      // Only while negotiating: after DRIVER, before FEATURES_OK.
      const uint32_t s = status_.load();
      if (!(s & kDriver) || (s & kFeaturesOk) || driver_features_sel_ > 1) {
        refused_.inc();
        return;
      }
      driver_features_ = replace_half(driver_features_, driver_features_sel_ == 1, v);
      return;
    }
    case VIRTIO_MMIO_QUEUE_SEL: queue_sel_ = v; return;  // out of range reads as "no queue"
    case VIRTIO_MMIO_QUEUE_NUM:
      if (Queue* q = writable_queue()) {
        if (!q->set_size(v > 0xffff ? 0 : static_cast<uint16_t>(v))) refused_.inc();
      }
      return;
    case VIRTIO_MMIO_QUEUE_READY:
      if (Queue* q = writable_queue()) {
        if (v > 1) {
          refused_.inc();
        } else if (q->set_ready(mem_, v == 1) != QueueConfigError::kOk) {
          refused_.inc();
          queue_configs_refused_.inc();
        }
      }
      return;
    case VIRTIO_MMIO_INTERRUPT_ACK: interrupt_status_.fetch_and(~v); return;
    case VIRTIO_MMIO_STATUS: write_status(v); return;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
    case VIRTIO_MMIO_QUEUE_USED_LOW:
    case VIRTIO_MMIO_QUEUE_USED_HIGH: write_queue_address(offset, v); return;
    case VIRTIO_MMIO_SHM_SEL: shm_sel_ = v; return;
    default:  // read-only, legacy (v1) or unknown register
      malformed_.inc();
      return;
  }
}

Queue* MmioTransport::writable_queue() {
  // Queues are configured after FEATURES_OK and frozen by DRIVER_OK.
  const uint32_t s = status_.load();
  if (!(s & kFeaturesOk) || (s & kDriverOk) || queue_sel_ >= queues_.size()) {
    refused_.inc();
    return nullptr;
  }
  return &queues_[queue_sel_];
}

void MmioTransport::write_queue_address(uint64_t offset, uint32_t v) {
  Queue* q = writable_queue();
  if (!q) return;
  const bool high = offset % 8 == 4;  // *_HIGH registers sit 4 bytes after *_LOW
  bool ok;
  switch (offset & ~uint64_t{4}) {
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
      ok = q->set_desc_table(GuestAddress(replace_half(q->desc_table().value(), high, v)));
      break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
      ok = q->set_avail_ring(GuestAddress(replace_half(q->avail_ring().value(), high, v)));
      break;
    default:
      ok = q->set_used_ring(GuestAddress(replace_half(q->used_ring().value(), high, v)));
      break;
  }
  if (!ok) refused_.inc();  // the queue is ready: its layout was validated
}

bool MmioTransport::features_acceptable() const {
  return (driver_features_ & ~offered_features_) == 0 && (driver_features_ & feature_bit(VIRTIO_F_VERSION_1));
}

void MmioTransport::write_status(uint32_t v) {
  if (v == 0) {
    reset();
    return;
  }
  // NEEDS_RESET is the device's bit: drivers write back what they read, so
  // it is ignored rather than refused.
  v &= ~kNeedsReset;
  const uint32_t cur = status_.load() & kDriverBits;
  // Unknown bits, bits cleared without a reset, or an init step skipped.
  if ((v & ~kDriverBits) || (cur & ~v) || !is_ordered_prefix(v)) {
    refused_.inc();
    return;
  }
  uint32_t added = v & ~cur;
  if ((added & kFeaturesOk) && !features_acceptable()) {
    // Leaving FEATURES_OK clear is how the driver learns of the refusal.
    features_rejected_.inc();
    added &= ~(kFeaturesOk | kDriverOk);
  }
  // fetch_or keeps a NEEDS_RESET the device may set concurrently.
  status_.fetch_or(added);
  if (added & kDriverOk) activate();
}

void MmioTransport::activate() {
  if (activated_.load()) return;
  for (auto& q : queues_) q.set_features(driver_features_);
  const ActivateContext ctx{driver_features_, queues_, &mem_, this};
  bool ok = false;
  try {
    ok = device_->activate(ctx);
  } catch (const std::exception&) {
    ok = false;  // a device setup failure must not take the VMM down
  }
  if (ok) {
    activated_.store(true);
    map_page(true);
  } else {
    signal_needs_reset();
  }
}

void MmioTransport::reset() {
  map_page(false);  // first: from here on the guest must read what reset leaves
  if (activated_.exchange(false)) device_->reset();
  for (auto& q : queues_) q.reset();
  device_features_sel_ = driver_features_sel_ = queue_sel_ = shm_sel_ = 0;
  driver_features_ = 0;
  interrupt_status_.store(0);
  status_.store(0);
}

void MmioTransport::notify(uint32_t queue) {
  if (queue >= queues_.size() || !activated_.load()) {
    bad_notifies_.inc();
    return;
  }
  device_->process_queue(static_cast<uint16_t>(queue));
  // Backstop: a device that forgot to report a broken queue still gets the
  // driver to reset it instead of leaving it hanging.
  if (queues_[queue].broken()) signal_needs_reset();
}

// --- Register page -----------------------------------------------------------

void MmioTransport::set_register_page(std::unique_ptr<RegisterPage> page) {
  std::lock_guard lock(mu_);
  page_ = std::move(page);
  page_mapped_ = false;
}

bool MmioTransport::register_page_mapped() const {
  std::lock_guard lock(mu_);
  return page_mapped_;
}

void MmioTransport::render_page() {
  std::lock_guard lock(page_mu_);
  for (uint64_t off = 0; off < kConfigOffset; off += 4) publish(off, register_value(off).value_or(0));
  copy_config_to_page();
}

void MmioTransport::copy_config_to_page() {
  if (const uint32_t n = device_->config_size(); n > 0) device_->read_config(0, page_->bytes().subspan(kConfigOffset, n));
}

void MmioTransport::publish(uint64_t offset, uint32_t v) {
  if (!page_) return;
  auto* word = reinterpret_cast<uint32_t*>(page_->bytes().data() + offset);
  std::atomic_ref<uint32_t>(*word).store(v, std::memory_order_release);  // guest loads race with it
}

void MmioTransport::map_page(bool mapped) {
  if (!page_ || page_mapped_ == mapped) return;
  if (mapped) render_page();
  // If unmapping fails, the page stays current (write() renders it) and correct.
  if (page_->set_mapped(mapped)) page_mapped_ = mapped;
}

// --- Interrupt ---------------------------------------------------------------

void MmioTransport::raise_interrupt(uint32_t bits) {
  {
    std::lock_guard lock(page_mu_);
    interrupt_status_.fetch_or(bits);
    publish(VIRTIO_MMIO_INTERRUPT_STATUS, interrupt_status_.load());
  }
  if (irq_) irq_();  // after the page shows the bits: the handler reads them first
}

void MmioTransport::signal_used_queue(uint16_t /*queue*/) { raise_interrupt(VIRTIO_MMIO_INT_VRING); }

void MmioTransport::signal_config_change() {
  if (page_) {
    // The guest may read the page while it changes: a generation before and
    // after the new bytes makes a torn read show as two generations.
    std::lock_guard lock(page_mu_);
    publish(VIRTIO_MMIO_CONFIG_GENERATION, config_generation_.fetch_add(1) + 1);
    copy_config_to_page();
    publish(VIRTIO_MMIO_CONFIG_GENERATION, config_generation_.fetch_add(1) + 1);
  } else {
    config_generation_.fetch_add(1);
  }
  raise_interrupt(VIRTIO_MMIO_INT_CONFIG);
}

void MmioTransport::signal_needs_reset() {
  uint32_t old;
  {
    std::lock_guard lock(page_mu_);
    old = status_.fetch_or(kNeedsReset);
    publish(VIRTIO_MMIO_STATUS, status_.load());
  }
  if (old & kNeedsReset) return;
  needs_reset_.inc();
  // §2.1.2: with DRIVER_OK set, NEEDS_RESET comes with a config change notification.
  if (old & kDriverOk) raise_interrupt(VIRTIO_MMIO_INT_CONFIG);
}

}  // namespace ksbox::devices::virtio
