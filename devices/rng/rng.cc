#include "devices/rng/rng.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>

namespace ksbox::devices {
namespace {

// Fills `buf` from the host's CSPRNG; false if the kernel would not give it.
bool fill_random(std::span<uint8_t> buf) {
  while (!buf.empty()) {
    const ssize_t n = ::getrandom(buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf = buf.subspan(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

uint32_t VirtioRng::device_type() const { return VIRTIO_ID_RNG; }

uint64_t VirtioRng::device_features() const { return 1ull << VIRTIO_F_VERSION_1; }

bool VirtioRng::activate(const virtio::ActivateContext& ctx) {
  std::lock_guard lock(mu_);
  ctx_ = ctx;
  return true;
}

void VirtioRng::reset() {
  std::lock_guard lock(mu_);
  ctx_.reset();
}

void VirtioRng::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!ctx_ || index != 0 || ctx_->queues.empty()) return;
  auto& q = ctx_->queues[0];
  const GuestMemory& mem = *ctx_->mem;
  bool used = false;
  for (;;) {
    auto r = q.pop(mem);
    if (r.status == virtio::PopStatus::kEmpty) break;
    if (r.status == virtio::PopStatus::kBroken) {
      ctx_->interrupt->signal_needs_reset();
      return;
    }
    uint32_t written = 0;
    if (r.status == virtio::PopStatus::kMalformed) {
      refused_.fetch_add(1, std::memory_order_relaxed);
    } else {
      for (const auto& seg : r.chain.writable) {
        const uint32_t want = std::min(seg.len, kMaxRequestBytes - written);
        if (want == 0) break;
        auto dst = mem.slice(seg.addr, want);  // validated by pop(); re-checked, never trusted
        if (!dst || !fill_random(*dst)) break;
        written += want;
      }
      bytes_.fetch_add(written, std::memory_order_relaxed);
    }
    q.add_used(mem, r.chain.head, written);
    used = true;
  }
  if (used && q.should_notify(mem)) ctx_->interrupt->signal_used_queue(0);
}

}  // namespace ksbox::devices
