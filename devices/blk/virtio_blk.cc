#include "devices/blk/virtio_blk.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

namespace ksbox::devices::blk {
namespace {

using virtio::feature_bit;
constexpr uint32_t kMaxErrorReports = 8;  // host I/O errors printed to stderr

std::unique_ptr<io::AsyncIo> make_engine(io::IoEngineKind kind, const std::string& path) {
  std::string why;
  auto e = io::make_async_io(kind, VirtioBlk::kEngineCapacity, "virtio-blk I/O", &why);
  if (!why.empty()) fmt::print(stderr, "ksbox-vmm: disk {}: {}; using synchronous I/O\n", path, why);
  return e;
}

}  // namespace

VirtioBlk::VirtioBlk(DiskImage disk, io::IoEngineKind io) : VirtioBlk(std::move(disk), nullptr) {
  engine_ = make_engine(io, disk_.path());
}

VirtioBlk::VirtioBlk(DiskImage disk, std::unique_ptr<io::AsyncIo> engine)
    : disk_(std::move(disk)), engine_(std::move(engine)), inflight_(kQueueSize) {
  config_.capacity = disk_.capacity_sectors();  // little-endian host (x86_64)
  config_.size_max = kSizeMax;
  config_.seg_max = kSegMax;
  config_.blk_size = kSectorSize;
  config_.wce = 1;
  config_.num_queues = 1;
  config_.max_discard_sectors = kMaxRangeSectors;
  config_.max_discard_seg = kMaxRanges;
  config_.discard_sector_alignment = kDiscardAlignSectors;
  config_.max_write_zeroes_sectors = kMaxRangeSectors;
  config_.max_write_zeroes_seg = kMaxRanges;
  config_.write_zeroes_may_unmap = 1;
}

VirtioBlk::~VirtioBlk() {
  std::lock_guard lock(mu_);
  completions_.clear();
  engine_->drain(completions_);  // the guest memory outlives us; the ops must not
}

uint32_t VirtioBlk::device_type() const { return VIRTIO_ID_BLOCK; }

uint64_t VirtioBlk::device_features() const {
  uint64_t f = feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_RING_F_INDIRECT_DESC) |
               feature_bit(VIRTIO_RING_F_EVENT_IDX) | feature_bit(VIRTIO_BLK_F_SIZE_MAX) |
               feature_bit(VIRTIO_BLK_F_SEG_MAX) | feature_bit(VIRTIO_BLK_F_BLK_SIZE) |
               feature_bit(VIRTIO_BLK_F_FLUSH) | feature_bit(VIRTIO_BLK_F_CONFIG_WCE);
  if (disk_.read_only())
    f |= feature_bit(VIRTIO_BLK_F_RO);
  else
    f |= feature_bit(VIRTIO_BLK_F_DISCARD) | feature_bit(VIRTIO_BLK_F_WRITE_ZEROES);
  return f;
}

void VirtioBlk::read_config(uint32_t offset, std::span<uint8_t> data) {
  virtio_blk_config c = config_;
  c.wce = writeback_.load();
  std::fill(data.begin(), data.end(), 0);
  if (offset >= sizeof c) return;
  std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&c) + offset,
              std::min<size_t>(data.size(), sizeof c - offset));
}

void VirtioBlk::write_config(uint32_t offset, std::span<const uint8_t> data) {
  // 0 = writethrough, 1 = writeback; anything else is ignored.
  if (offset == offsetof(virtio_blk_config, wce) && data.size() == 1 && data[0] <= 1) writeback_.store(data[0]);
}

bool VirtioBlk::writethrough() const {
  // Without FLUSH the driver cannot ask for durability: every write is.
  return !limits_.flush || writeback_.load() == 0;
}

bool VirtioBlk::activate(const virtio::ActivateContext& ctx) {
  std::lock_guard lock(mu_);
  if (ctx.queues.size() != 1) return false;
  limits_ = BlkLimits{};
  limits_.capacity_sectors = disk_.capacity_sectors();
  limits_.read_only = disk_.read_only();
  limits_.flush = ctx.features & feature_bit(VIRTIO_BLK_F_FLUSH);
  limits_.discard = ctx.features & feature_bit(VIRTIO_BLK_F_DISCARD);
  limits_.write_zeroes = ctx.features & feature_bit(VIRTIO_BLK_F_WRITE_ZEROES);
  limits_.max_segments = kSegMax;
  limits_.max_discard_sectors = limits_.max_write_zeroes_sectors = kMaxRangeSectors;
  limits_.max_discard_seg = limits_.max_write_zeroes_seg = kMaxRanges;
  if (!(ctx.features & feature_bit(VIRTIO_BLK_F_CONFIG_WCE))) writeback_.store(1);
  ctx_ = ctx;
  return true;
}

void VirtioBlk::reset() {
  std::lock_guard lock(mu_);
  // The driver is gone: wait for what the kernel still does with its buffers,
  // then forget it all without touching the rings.
  completions_.clear();
  engine_->drain(completions_);
  completions_.clear();
  for (auto& f : inflight_) f = InFlight{};
  ctx_.reset();
  used_ = false;
  writeback_.store(1);
}

BlkStats VirtioBlk::stats() const {
  return {completed_.get(), io_errors_.get(), refused_.get(), reads_.get(), writes_.get()};
}

void VirtioBlk::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!ctx_ || index != 0) return;
  pump();
}

void VirtioBlk::on_host_event() {
  std::lock_guard lock(mu_);
  engine_->ack_event();
  if (!ctx_) {
    // Only after reset(), which drained everything: nothing to complete.
    completions_.clear();
    engine_->reap(completions_);
    completions_.clear();
    return;
  }
  pump();
}

void VirtioBlk::pump() {
  auto& q = ctx_->queues[0];
  const GuestMemory& mem = *ctx_->mem;
  for (;;) {
    // Room for the largest request before taking one off the ring: a popped
    // request is never left waiting for the engine.
    if (engine_->capacity() - engine_->in_flight() < kMaxRanges) {
      reap();
      if (engine_->capacity() - engine_->in_flight() < kMaxRanges) break;
    }
    auto r = q.pop(mem);
    if (r.status == virtio::PopStatus::kEmpty) break;
    if (r.status == virtio::PopStatus::kBroken) {
      ctx_->interrupt->signal_needs_reset();
      return;
    }
    if (r.status == virtio::PopStatus::kMalformed) {
      refused_.inc();
      q.add_used(mem, r.chain.head, 0);
      used_ = true;
      continue;
    }
    auto p = parse_request(r.chain, mem, limits_);
    switch (p.outcome) {
      case ParseResult::Outcome::kNoStatus:
        parse_stats_.count(p.error);
        refused_.inc();
        q.add_used(mem, r.chain.head, 0);
        used_ = true;
        break;
      case ParseResult::Outcome::kReply:
        parse_stats_.count(p.error);
        refused_.inc();
        reply_now(r.chain.head, p.request.status, p.status, p.request.used_len);
        break;
      case ParseResult::Outcome::kRun:
        start(r.chain.head, p.request);
        break;
    }
  }
  engine_->flush();
  reap();
  if (used_ && q.should_notify(mem)) ctx_->interrupt->signal_used_queue(0);
  used_ = false;
}

void VirtioBlk::reply_now(uint16_t head, uint8_t* status, uint8_t code, uint32_t used_len) {
  *status = code;
  completed_.inc();
  ctx_->queues[0].add_used(*ctx_->mem, head, used_len);
  used_ = true;
}

void VirtioBlk::start(uint16_t head, BlkRequest& req) {
  InFlight& f = inflight_[head];
  f = InFlight{req.type, req.status, req.used_len, 0, VIRTIO_BLK_S_OK, {}};
  const uint64_t tag = uint64_t{head} * kMaxRanges;
  io::IoOp op;
  op.fd = disk_.fd();
  op.tag = tag;
  switch (req.type) {
    case VIRTIO_BLK_T_GET_ID: {
      // The serial, NUL-padded; a buffer under 20 bytes gets a prefix.
      std::array<char, VIRTIO_BLK_ID_BYTES> id{};
      std::memcpy(id.data(), disk_.serial().data(), std::min(disk_.serial().size(), id.size()));
      size_t at = 0;
      for (const auto& v : req.data) {
        std::memcpy(v.iov_base, id.data() + at, v.iov_len);
        at += v.iov_len;
      }
      reply_now(head, req.status, VIRTIO_BLK_S_OK, req.used_len);
      return;
    }
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
      if (req.data_bytes == 0) {  // nothing to move
        reply_now(head, req.status, VIRTIO_BLK_S_OK, req.used_len);
        return;
      }
      op.kind = req.type == VIRTIO_BLK_T_IN ? io::IoOp::Kind::kRead : io::IoOp::Kind::kWrite;
      op.offset = req.sector * kSectorSize;
      op.iov = req.data;
      op.dsync = op.kind == io::IoOp::Kind::kWrite && writethrough();
      (op.kind == io::IoOp::Kind::kRead ? reads_ : writes_).inc();
      break;
    case VIRTIO_BLK_T_FLUSH:
      op.kind = io::IoOp::Kind::kDataSync;
      break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
      f.ranges = std::move(req.ranges);
      f.pending = static_cast<uint32_t>(f.ranges.size());
      for (uint32_t i = 0; i < f.ranges.size(); ++i) {
        const bool punch = req.type == VIRTIO_BLK_T_DISCARD || f.ranges[i].unmap || zero_range_unsupported_;
        submit_range(head, i, f.ranges[i], punch);
      }
      return;
  }
  f.pending = 1;
  engine_->submit(op);  // room was checked before the pop
}

bool VirtioBlk::submit_range(uint16_t head, uint32_t index, const Range& r, bool punch) {
  io::IoOp op;
  op.kind = io::IoOp::Kind::kFallocate;
  op.fd = disk_.fd();
  op.tag = uint64_t{head} * kMaxRanges + index;
  op.offset = r.sector * kSectorSize;
  op.length = uint64_t{r.sectors} * kSectorSize;
  op.mode = FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
  if (op.length == 0) {  // an empty range: nothing to do, but it still completes
    completions_.push_back({op.tag, 0});
    return true;
  }
  return engine_->submit(op);
}

void VirtioBlk::reap() {
  // Completions of empty ranges may already be waiting in completions_.
  engine_->reap(completions_);
  // on_completion() may resubmit (and a sync engine then completes at once):
  // take the batch first.
  while (!completions_.empty()) {
    std::vector<io::IoCompletion> batch;
    batch.swap(completions_);
    for (const auto& c : batch) on_completion(c);
    engine_->flush();
    engine_->reap(completions_);
  }
}

void VirtioBlk::on_completion(const io::IoCompletion& c) {
  const auto head = static_cast<uint16_t>(c.tag / kMaxRanges);
  const auto index = static_cast<uint32_t>(c.tag % kMaxRanges);
  if (head >= inflight_.size() || inflight_[head].pending == 0) return;  // cannot happen: our own tags
  InFlight& f = inflight_[head];
  if (c.result < 0) {
    const bool unsupported = c.result == -EOPNOTSUPP;
    if (f.type == VIRTIO_BLK_T_WRITE_ZEROES && unsupported && !zero_range_unsupported_ && index < f.ranges.size()) {
      // This file system cannot zero a range in place (tmpfs): a hole reads
      // as zeroes too.
      zero_range_unsupported_ = true;
      submit_range(head, index, f.ranges[index], true);
      return;
    }
    // A discard is a hint: a file system without holes may ignore it.
    if (!(f.type == VIRTIO_BLK_T_DISCARD && unsupported)) {
      f.result = VIRTIO_BLK_S_IOERR;
      report_host_error(f.type == VIRTIO_BLK_T_IN ? "read" : f.type == VIRTIO_BLK_T_FLUSH ? "flush" : "write",
                        c.result);
    }
  }
  if (--f.pending == 0) finish(head);
}

void VirtioBlk::finish(uint16_t head) {
  InFlight& f = inflight_[head];
  if (f.result != VIRTIO_BLK_S_OK) io_errors_.inc();
  reply_now(head, f.status, f.result, f.used_len);
  f = InFlight{};
}

void VirtioBlk::report_host_error(const char* what, int64_t err) {
  if (errors_reported_.get() >= kMaxErrorReports) return;
  errors_reported_.inc();
  fmt::print(stderr, "ksbox-vmm: disk {}: {} failed: {} (the guest gets an I/O error{})\n", disk_.path(), what,
             std::strerror(static_cast<int>(-err)), errors_reported_.get() == kMaxErrorReports ? "; no more reports" : "");
}

}  // namespace ksbox::devices::blk
