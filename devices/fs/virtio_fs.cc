#include "devices/fs/virtio_fs.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "vmm/error.h"
#include "vmm/machine_config.h"

namespace ksbox::devices::fs {

VirtioFs::VirtioFs(std::string_view tag, std::string host_dir, PassthroughOptions opts, IoEngineKind io,
                   std::chrono::microseconds poll)
    : tag_(tag), host_dir_(std::move(host_dir)), opts_(opts), io_(io), poll_(poll) {
  static_assert(kTagSize == kMaxShareTagBytes);
  validate_share_tag(tag);
  std::memcpy(config_.data(), tag.data(), tag.size());
  const uint32_t num_request_queues = 1;  // little-endian host (x86_64)
  std::memcpy(config_.data() + kTagSize, &num_request_queues, sizeof num_request_queues);
  server_ = make_server();  // fails early on a bad directory; serves the first session
}

std::unique_ptr<FuseServer> VirtioFs::make_server() const {
  rlimit rl{};
  const uint64_t fd_limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 1u << 20;
  return std::make_unique<FuseServer>(
      std::make_unique<Passthrough>(host_dir_, opts_.fit_to_fd_limit(fd_limit), make_io_engine(io_)));
}

uint32_t VirtioFs::device_type() const { return VIRTIO_ID_FS; }

uint64_t VirtioFs::device_features() const {
  return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX);
}

void VirtioFs::read_config(uint32_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= config_.size()) return;
  const size_t n = std::min(data.size(), config_.size() - offset);
  std::memcpy(data.data(), config_.data() + offset, n);
}

bool VirtioFs::activate(const virtio::ActivateContext& ctx) {
  std::lock_guard lock(mu_);
  if (ctx.queues.size() != queue_sizes_.size()) return false;
  if (!server_) {
    try {
      server_ = make_server();
    } catch (const std::exception&) {
      return false;  // the host directory went away: the device needs a reset
    }
  }
  ctx_ = ctx;
  // FORGETs want no answer: the guest kicks for them only every
  // kForgetKickBatch, and every request drains them first (drain()).
  ctx_->queues[kHiprioQueue].set_kick_batch(kForgetKickBatch);
  return true;
}

void VirtioFs::reset() {
  std::lock_guard lock(mu_);
  ctx_.reset();
  if (server_) past_ += server_->stats();
  server_.reset();  // closes every host fd of the old session
}

FuseStats VirtioFs::fuse_stats() {
  std::lock_guard lock(mu_);
  FuseStats all = past_;
  if (server_) all += server_->stats();
  return all;
}

void VirtioFs::serve_chain(virtio::Queue& q, const virtio::DescriptorChain& chain) {
  const GuestMemory& mem = *ctx_->mem;
  std::vector<std::span<const uint8_t>> in;
  std::vector<std::span<uint8_t>> out;
  in.reserve(chain.readable.size());
  out.reserve(chain.writable.size());
  bool ok = true;
  // pop() validated every segment; slice() checks them again, never trusted.
  for (const auto& seg : chain.readable) {
    auto s = mem.slice(seg.addr, seg.len);
    if (!s) ok = false;
    else in.emplace_back(*s);
  }
  for (const auto& seg : chain.writable) {
    auto s = mem.slice(seg.addr, seg.len);
    if (!s) ok = false;
    else out.emplace_back(*s);
  }
  uint32_t written = 0;
  if (!ok) {
    refused_.fetch_add(1, std::memory_order_relaxed);
  } else {
    served_.fetch_add(1, std::memory_order_relaxed);
    const size_t n = server_->handle(in, out);
    written = static_cast<uint32_t>(std::min<size_t>(n, chain.writable_bytes));
  }
  // FORGET and BATCH_FORGET have no reply: the chain still completes, empty.
  q.add_used(mem, chain.head, written);
}

void VirtioFs::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!ctx_ || !server_ || index >= ctx_->queues.size()) return;
  serve(index);
  if (index != kHiprioQueue && poll_.count() > 0) poll(index);
}

void VirtioFs::serve(uint16_t index) {
  // The FORGETs waiting first. One interrupt then covers them and the
  // replies (one line, one used-buffer bit): one apiece would wake the
  // guest that waits for the reply twice, an exit and a HLT more.
  bool notify = index != kHiprioQueue && drain(kHiprioQueue);
  notify = drain(index) || notify;
  if (notify) ctx_->interrupt->signal_used_queue(index);
}

// A guest at file work sends its next request soon after the last reply,
// and each kick is an exit. So for poll_ after a request the driver is
// asked to kick only for a full ring (avail_event a ring ahead) and the
// thread watches the avail idx instead. Then kicks are asked for again and
// the ring checked once more, so a request published meanwhile is served.
void VirtioFs::poll(uint16_t index) {
  using Clock = std::chrono::steady_clock;
  auto& q = ctx_->queues[index];
  const GuestMemory& mem = *ctx_->mem;
  auto serve_counted = [&] {
    const uint16_t before = q.next_avail();
    serve(index);
    polled_.fetch_add(static_cast<uint16_t>(q.next_avail() - before), std::memory_order_relaxed);
  };
  q.set_kick_batch(q.size());
  serve_counted();  // its empty pop() moves avail_event
  // A guest that never pauses must not keep mu_ (the control socket's fs
  // query, reset()) or the thread (its stop) for good: a session ends after
  // kPollSessionWindows windows, and the next request kicks again.
  const auto start = Clock::now();
  const auto session_end = start + kPollSessionWindows * poll_;
  auto deadline = start + poll_;
  // No pause instruction in the loop: an emulator (QEMU's TCG, under which
  // the nested harness runs) leaves its CPU loop and takes its big lock on
  // every PAUSE, which slows the guest's vCPU more than the spin saves.
  for (uint32_t spins = 1;; ++spins) {
    if (q.avail_pending(mem)) {
      serve_counted();
      deadline = Clock::now() + poll_;
    }
    if (spins % 64 == 0) {
      const auto now = Clock::now();
      if (now >= deadline || now >= session_end) break;
    }
  }
  q.set_kick_batch(1);
  serve_counted();
}

bool VirtioFs::drain(uint16_t index) {
  auto& q = ctx_->queues[index];
  const GuestMemory& mem = *ctx_->mem;
  bool used = false;
  for (;;) {
    auto r = q.pop(mem);
    if (r.status == virtio::PopStatus::kEmpty) break;
    if (r.status == virtio::PopStatus::kBroken) {
      ctx_->interrupt->signal_needs_reset();
      break;
    }
    if (r.status == virtio::PopStatus::kMalformed) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      q.add_used(mem, r.chain.head, 0);
    } else {
      serve_chain(q, r.chain);
    }
    used = true;
  }
  return used && q.should_notify(mem);
}

}  // namespace ksbox::devices::fs
