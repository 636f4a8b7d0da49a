#include "devices/vsock/vsock.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "devices/virtio/ring.h"
#include "vmm/error.h"

namespace ksbox::devices {
namespace {

uint64_t checked_cid(uint64_t cid) {
  // 0-2 are the hypervisor, local and host addresses; 0xffffffff is VMADDR_CID_ANY.
  if (cid < 3 || cid >= 0xffffffff)
    throw Error(fmt::format("vsock guest CID {} is reserved: use 3 .. {}", cid, 0xfffffffeu));
  return cid;
}

}  // namespace

VirtioVsock::VirtioVsock(std::string path, uint64_t guest_cid, vsock::MuxerLimits limits)
    : guest_cid_(checked_cid(guest_cid)),
      muxer_(std::make_unique<vsock::Muxer>(std::move(path), guest_cid, limits)) {}

VirtioVsock::~VirtioVsock() = default;

uint32_t VirtioVsock::device_type() const { return VIRTIO_ID_VSOCK; }

uint64_t VirtioVsock::device_features() const {
  // No VIRTIO_VSOCK_F_SEQPACKET: streams only.
  return virtio::feature_bit(VIRTIO_F_VERSION_1) | virtio::feature_bit(VIRTIO_RING_F_EVENT_IDX) |
         virtio::feature_bit(VIRTIO_RING_F_INDIRECT_DESC);
}

void VirtioVsock::read_config(uint32_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
  const uint64_t cid = guest_cid_;  // little-endian host (ring.h)
  if (offset >= sizeof cid) return;
  std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&cid) + offset,
              std::min<size_t>(data.size(), sizeof cid - offset));
}

void VirtioVsock::write_config(uint32_t, std::span<const uint8_t>) {}  // guest_cid is read-only

bool VirtioVsock::activate(const virtio::ActivateContext& ctx) {
  if (ctx.queues.size() != vsock::GuestQueues::kNumQueues || !ctx.mem || !ctx.interrupt) return false;
  muxer_->activate(ctx);
  return true;
}

void VirtioVsock::reset() { muxer_->reset(); }

void VirtioVsock::process_queue(uint16_t index) { muxer_->process_queue(index); }

}  // namespace ksbox::devices
