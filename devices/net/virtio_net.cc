#include "devices/net/virtio_net.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "devices/virtio/segments.h"
#include "vmm/error.h"

namespace ksbox::devices::net {
namespace {

// struct virtio_net_config as far as we offer it: mac, status,
// max_virtqueue_pairs, mtu.
constexpr uint32_t kConfigSize = 12;

uint16_t checked_mtu(uint16_t mtu) {
  if (mtu < 68 || mtu > kMaxMtu) throw Error(fmt::format("virtio-net MTU {} is outside 68 .. {}", mtu, kMaxMtu));
  return mtu;
}

}  // namespace

VirtioNet::VirtioNet(MacAddress mac, uint16_t mtu, std::unique_ptr<NetBackend> backend)
    : mac_(mac), mtu_(checked_mtu(mtu)), backend_(std::move(backend)) {
  backend_->start(*this);
}

VirtioNet::~VirtioNet() { backend_.reset(); }

uint32_t VirtioNet::device_type() const { return VIRTIO_ID_NET; }

uint64_t VirtioNet::device_features() const {
  using virtio::feature_bit;
  return feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_RING_F_EVENT_IDX) |
         feature_bit(VIRTIO_RING_F_INDIRECT_DESC) | feature_bit(kFeatureMac) |
         feature_bit(kFeatureStatus) | feature_bit(kFeatureMtu) | feature_bit(kFeatureMrgRxbuf) |
         feature_bit(kFeatureCsum) | feature_bit(kFeatureGuestCsum);
}

uint32_t VirtioNet::config_size() const { return kConfigSize; }

void VirtioNet::read_config(uint32_t offset, std::span<uint8_t> data) {
  std::array<uint8_t, kConfigSize> cfg{};
  std::memcpy(cfg.data(), mac_.data(), mac_.size());
  const uint16_t status = kStatusLinkUp, pairs = 1, mtu = mtu_;  // little-endian host
  std::memcpy(cfg.data() + 6, &status, 2);
  std::memcpy(cfg.data() + 8, &pairs, 2);
  std::memcpy(cfg.data() + 10, &mtu, 2);
  std::fill(data.begin(), data.end(), uint8_t{0});
  if (offset >= kConfigSize) return;
  std::memcpy(data.data(), cfg.data() + offset, std::min<size_t>(data.size(), kConfigSize - offset));
}

// The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR (not offered); nothing else is.
void VirtioNet::write_config(uint32_t, std::span<const uint8_t>) {}

bool VirtioNet::activate(const virtio::ActivateContext& ctx) {
  if (ctx.queues.size() != queue_sizes_.size() || !ctx.mem || !ctx.interrupt) return false;
  std::lock_guard lock(mu_);
  ctx_ = ctx;
  broken_ = false;
  tx_blocked_ = false;
  return true;
}

void VirtioNet::reset() {
  std::lock_guard lock(mu_);
  ctx_.reset();
  rx_chains_.clear();
  rx_chain_bytes_ = 0;
  backlog_.clear();
  backlog_bytes_ = 0;
  rx_used_ = tx_used_ = false;
}

void VirtioNet::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!ctx_ || broken_) return;
  if (index == kRxQueue) flush_backlog();
  if (index == kTxQueue) process_tx();
  notify();
}

void VirtioNet::backend_writable() {
  std::lock_guard lock(mu_);
  if (!ctx_ || broken_ || !tx_blocked_) return;
  tx_blocked_ = false;
  process_tx();
  notify();
}

void VirtioNet::mark_broken() {
  if (broken_) return;
  broken_ = true;
  rx_chains_.clear();
  rx_chain_bytes_ = 0;
  ctx_->interrupt->signal_needs_reset();
}

void VirtioNet::notify() {
  if (broken_) return;
  const GuestMemory& mem = *ctx_->mem;
  if (rx_used_) {
    rx_used_ = false;
    if (ctx_->queues[kRxQueue].should_notify(mem)) ctx_->interrupt->signal_used_queue(kRxQueue);
  }
  if (tx_used_) {
    tx_used_ = false;
    if (ctx_->queues[kTxQueue].should_notify(mem)) ctx_->interrupt->signal_used_queue(kTxQueue);
  }
}

// --- TX: guest → backend ---------------------------------------------------------

void VirtioNet::process_tx() {
  const GuestMemory& mem = *ctx_->mem;
  auto& q = ctx_->queues[kTxQueue];
  // Drains the ring: with EVENT_IDX the driver kicks again only for
  // entries past the last one we consumed.
  for (;;) {
    if (!backend_->can_send()) {
      tx_blocked_ = true;
      return;
    }
    auto r = q.pop(mem);
    if (r.status == virtio::PopStatus::kEmpty) return;
    if (r.status == virtio::PopStatus::kBroken) {
      mark_broken();
      return;
    }
    if (r.status == virtio::PopStatus::kMalformed) {
      refuse(TxRefusal::kMalformedChain);
    } else if (r.chain.readable_bytes > kMaxPacketBytes) {
      refuse(TxRefusal::kOversizedPacket);
    } else {
      tx_buf_.resize(r.chain.readable_bytes);
      const auto why = virtio::read_segments(mem, r.chain.readable, 0, tx_buf_)
                           ? prepare_tx_packet(tx_buf_, ctx_->features)
                           : TxRefusal::kMalformedChain;
      if (why != TxRefusal::kNone) {
        refuse(why);
      } else {
        const auto frame = std::span<const uint8_t>(tx_buf_).subspan(kNetHeaderSize);
        backend_->send_frame(frame);
        tx_frames_.inc();
        tx_bytes_.set(tx_bytes_.get() + frame.size());
      }
    }
    q.add_used(mem, r.chain.head, 0);  // the device writes nothing into TX buffers
    tx_used_ = true;
  }
}

// --- RX: backend → guest ---------------------------------------------------------

void VirtioNet::receive_frame(std::span<const uint8_t> frame) {
  std::lock_guard lock(mu_);
  if (!ctx_ || broken_) {
    rx_inactive_.inc();
    return;
  }
  if (frame.size() > kMaxFrameBytes) {
    rx_too_big_.inc();
    return;
  }
  if (backlog_.empty() && deliver(frame) != Rx::kNoBuffers) {
    notify();
    return;
  }
  if (backlog_.size() >= kMaxBacklogFrames || backlog_bytes_ + frame.size() > kMaxBacklogBytes) {
    rx_backlog_drops_.inc();
  } else {
    backlog_.emplace_back(frame.begin(), frame.end());
    backlog_bytes_ += frame.size();
  }
  notify();
}

void VirtioNet::flush_backlog() {
  while (!backlog_.empty() && !broken_) {
    if (deliver(backlog_.front()) == Rx::kNoBuffers) return;
    backlog_bytes_ -= backlog_.front().size();
    backlog_.pop_front();
  }
}

bool VirtioNet::gather_rx_chains(uint32_t bytes, bool mergeable) {
  const GuestMemory& mem = *ctx_->mem;
  auto& q = ctx_->queues[kRxQueue];
  while (mergeable ? rx_chain_bytes_ < bytes : rx_chains_.empty()) {
    auto r = q.pop(mem);  // at most a ring's worth before kEmpty: heads stay in flight
    switch (r.status) {
      case virtio::PopStatus::kEmpty: return false;
      case virtio::PopStatus::kBroken: mark_broken(); return false;
      case virtio::PopStatus::kMalformed: break;
      case virtio::PopStatus::kChain:
        if (r.chain.writable_bytes >= kNetHeaderSize) {
          rx_chain_bytes_ += r.chain.writable_bytes;
          rx_chains_.push_back(std::move(r.chain));
          continue;
        }
        break;
    }
    rx_refused_chains_.inc();
    complete_rx(r.chain.head, 0);
  }
  return true;
}

void VirtioNet::complete_rx(uint16_t head, uint32_t len) {
  ctx_->queues[kRxQueue].add_used(*ctx_->mem, head, len);
  rx_used_ = true;
}

VirtioNet::Rx VirtioNet::deliver(std::span<const uint8_t> frame) {
  const GuestMemory& mem = *ctx_->mem;
  const bool mergeable = has(kFeatureMrgRxbuf);
  const uint32_t need = kNetHeaderSize + static_cast<uint32_t>(frame.size());
  if (!gather_rx_chains(need, mergeable)) {
    if (broken_) return Rx::kDropped;
    // Every buffer the ring can hold is ours and the frame still does not fit.
    if (rx_chains_.size() >= ctx_->queues[kRxQueue].size()) {
      rx_too_big_.inc();
      return Rx::kDropped;
    }
    return Rx::kNoBuffers;
  }
  if (!mergeable && rx_chains_.front().writable_bytes < need) {
    rx_too_big_.inc();  // the chain stays for the next frame
    return Rx::kDropped;
  }

  auto& rxq = ctx_->queues[kRxQueue];
  uint16_t chains = 0;
  for (uint32_t left = need; left > 0; ++chains) left -= std::min(left, rx_chains_[chains].writable_bytes);
  const auto header = encode(rx_header(ctx_->features, chains));
  size_t sent = 0;  // frame bytes written so far
  for (uint16_t i = 0; i < chains; ++i) {
    const auto& c = rx_chains_[i];
    const uint32_t hdr = i == 0 ? kNetHeaderSize : 0;
    const size_t n = std::min<size_t>(c.writable_bytes - hdr, frame.size() - sent);
    // The queue validated these segments; a failed write means the memory
    // map changed under us: the frame is lost, the chains still complete.
    if (hdr) virtio::write_segments(mem, c.writable, 0, header);
    virtio::write_segments(mem, c.writable, hdr, frame.subspan(sent, n));
    sent += n;
    rxq.fill_used(mem, c.head, static_cast<uint32_t>(hdr + n));
  }
  // All of the packet's buffers at once: a driver that sees num_buffers in
  // the first one and finds the rest missing drops the packet.
  rxq.publish_used(mem);
  rx_used_ = true;
  for (uint16_t i = 0; i < chains; ++i) {
    rx_chain_bytes_ -= rx_chains_.front().writable_bytes;
    rx_chains_.pop_front();
  }
  rx_frames_.inc();
  rx_bytes_.set(rx_bytes_.get() + frame.size());
  return Rx::kDelivered;
}

NetStats VirtioNet::stats() const {
  NetStats s;
  for (size_t i = 0; i < kTxRefusalCount; ++i) s.tx_refused[i] = tx_refused_[i].get();
  s.tx_frames = tx_frames_.get();
  s.tx_bytes = tx_bytes_.get();
  s.rx_frames = rx_frames_.get();
  s.rx_bytes = rx_bytes_.get();
  s.rx_dropped_inactive = rx_inactive_.get();
  s.rx_dropped_backlog = rx_backlog_drops_.get();
  s.rx_dropped_too_big = rx_too_big_.get();
  s.rx_refused_chains = rx_refused_chains_.get();
  return s;
}

}  // namespace ksbox::devices::net
