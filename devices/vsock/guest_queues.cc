#include "devices/vsock/guest_queues.h"

namespace ksbox::devices::vsock {

GuestQueues::GuestQueues(const virtio::ActivateContext& ctx, uint64_t guest_cid, RefusalCounters& refused)
    : ctx_(ctx), guest_cid_(guest_cid), refused_(refused) {}

void GuestQueues::mark_broken() {
  if (broken_) return;
  broken_ = true;
  stash_.clear();
  ctx_.interrupt->signal_needs_reset();
}

std::optional<virtio::DescriptorChain> GuestQueues::take_rx() {
  if (broken_) return std::nullopt;
  if (!stash_.empty()) {
    auto c = std::move(stash_.back());
    stash_.pop_back();
    return c;
  }
  auto& q = ctx_.queues[kRxQueue];
  // Bounded: each round consumes one avail entry, at most a ring's worth.
  for (uint32_t round = 0; round <= q.size(); ++round) {
    auto r = q.pop(mem());
    switch (r.status) {
      case virtio::PopStatus::kEmpty: return std::nullopt;
      case virtio::PopStatus::kBroken: mark_broken(); return std::nullopt;
      case virtio::PopStatus::kMalformed:
        count(Refusal::kMalformedChain);
        q.add_used(mem(), r.chain.head, 0);
        rx_used_ = true;
        continue;
      case virtio::PopStatus::kChain:
        if (rx_chain_usable(r.chain)) return std::move(r.chain);
        count(Refusal::kRxBufferTooSmall);
        q.add_used(mem(), r.chain.head, 0);
        rx_used_ = true;
        continue;
    }
  }
  return std::nullopt;
}

bool GuestQueues::rx_available() {
  auto c = take_rx();
  if (!c) return false;
  give_back_rx(std::move(*c));
  return true;
}

void GuestQueues::complete_rx(const virtio::DescriptorChain& chain, const Header& h) {
  if (broken_) return;
  write_rx_header(mem(), chain, h);
  ctx_.queues[kRxQueue].add_used(mem(), chain.head, kHeaderSize + h.len);
  rx_used_ = true;
}

bool GuestQueues::send_control(const Header& h) {
  auto c = take_rx();
  if (!c) return false;
  Header hdr = h;
  hdr.len = 0;
  complete_rx(*c, hdr);
  return true;
}

GuestQueues::TxItem GuestQueues::pop_tx() {
  TxItem item;
  if (broken_) {
    item.kind = TxItem::kBroken;
    return item;
  }
  auto r = ctx_.queues[kTxQueue].pop(mem());
  item.head = r.chain.head;
  switch (r.status) {
    case virtio::PopStatus::kEmpty: item.kind = TxItem::kEmpty; break;
    case virtio::PopStatus::kBroken:
      mark_broken();
      item.kind = TxItem::kBroken;
      break;
    case virtio::PopStatus::kMalformed:
      count(Refusal::kMalformedChain);
      item.kind = TxItem::kRefused;
      break;
    case virtio::PopStatus::kChain: {
      auto parsed = parse_tx(mem(), r.chain, guest_cid_);
      if (parsed.refusal != Refusal::kNone) {
        count(parsed.refusal);
        item.kind = TxItem::kRefused;
      } else {
        item.kind = TxItem::kPacket;
        item.packet = std::move(parsed.packet);
      }
      break;
    }
  }
  return item;
}

void GuestQueues::complete_tx(uint16_t head) {
  if (broken_) return;
  ctx_.queues[kTxQueue].add_used(mem(), head, 0);  // the device writes nothing into TX buffers
  tx_used_ = true;
}

void GuestQueues::notify() {
  if (broken_) return;
  if (rx_used_) {
    rx_used_ = false;
    if (ctx_.queues[kRxQueue].should_notify(mem())) ctx_.interrupt->signal_used_queue(kRxQueue);
  }
  if (tx_used_) {
    tx_used_ = false;
    if (ctx_.queues[kTxQueue].should_notify(mem())) ctx_.interrupt->signal_used_queue(kTxQueue);
  }
}

}  // namespace ksbox::devices::vsock
