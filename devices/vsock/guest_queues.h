// The vsock virtqueues while the driver is up (virtio 1.2 §5.10.2): rx (0)
// carries host → guest packets in buffers the guest posts, tx (1) guest →
// host packets, event (2) is accepted but unused (no TRANSPORT_RESET yet).
//
// Knows packets and queues, nothing of connections. Interrupts are batched:
// completions only mark a queue as used, notify() signals the guest once.
// Not thread-safe: the muxer's lock covers it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "devices/virtio/device.h"
#include "devices/virtio/ring.h"
#include "devices/vsock/packet.h"

namespace ksbox::devices::vsock {

using RefusalCounters = std::array<virtio::Counter, kRefusalCount>;

class GuestQueues {
 public:
  static constexpr uint16_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2, kNumQueues = 3;

  // `ctx` has kNumQueues queues (checked by the caller).
  GuestQueues(const virtio::ActivateContext& ctx, uint64_t guest_cid, RefusalCounters& refused);

  const GuestMemory& mem() const { return *ctx_.mem; }
  uint64_t guest_cid() const { return guest_cid_; }
  // A queue went broken: the device stops until the driver resets it.
  bool broken() const { return broken_; }

  // --- RX.
  // A chain that can hold at least a header, or nullopt when the guest has
  // posted none (or the queue broke). Chains too small are completed empty.
  std::optional<virtio::DescriptorChain> take_rx();
  // An unused chain from take_rx(), kept for the next packet (a popped chain
  // cannot go back on the ring).
  void give_back_rx(virtio::DescriptorChain chain) { stash_.push_back(std::move(chain)); }
  // Whether take_rx() would succeed now.
  bool rx_available();
  // Completes `chain` with header `h`; h.len payload bytes are already in place.
  void complete_rx(const virtio::DescriptorChain& chain, const Header& h);
  // A header-only packet; false when no RX buffer is available.
  bool send_control(const Header& h);

  // --- TX.
  struct TxItem {
    enum Kind : uint8_t { kEmpty, kPacket, kRefused, kBroken } kind = kEmpty;
    uint16_t head = 0;
    TxPacket packet;  // kPacket
  };
  // The next guest packet, validated. kRefused has been counted; like
  // kPacket, its head must be completed with complete_tx().
  TxItem pop_tx();
  void complete_tx(uint16_t head);

  // Raises the used-buffer interrupt for queues completed since the last
  // call, as the driver's suppression settings ask.
  void notify();

 private:
  void count(Refusal r) { refused_[static_cast<size_t>(r)].inc(); }
  void mark_broken();

  virtio::ActivateContext ctx_;
  const uint64_t guest_cid_;
  RefusalCounters& refused_;
  std::vector<virtio::DescriptorChain> stash_;
  bool broken_ = false;
  bool rx_used_ = false, tx_used_ = false;
};

}  // namespace ksbox::devices::vsock
