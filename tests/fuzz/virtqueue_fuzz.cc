// libFuzzer target for the guest-facing virtio parsers: the split virtqueue
// (pop/add_used/should_notify on rings and descriptors the input controls)
// and the virtio-mmio register file (arbitrary register traffic, with a
// device that processes its queues on notify).
//
// Input: byte 0 picks the mode (bit 0: 0 = queue, 1 = transport) and, for the
// queue, the negotiated ring features (bit 1 indirect, bit 2 event idx).
// Then a mode-specific header and an op list; whatever remains is copied into
// guest RAM: region A [0x0, 0x2000) first, then region B [0x3000, 0x4000),
// with a gap between them. Everything is bounded: at most 256 ops, and every
// device loop stops after 2*size+2 pops.
//
// Invariants that would be memory-safety bugs in a real device are checked
// with CHECK (abort), so the fuzzer reports them as crashes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <memory>
#include <span>

#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/queue.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_guest_memory.h"
#include "vmm/guest_memory.h"

namespace ksbox::devices::virtio {
namespace {

using fuzz::Input;
using fuzz::load_memory;

constexpr uint64_t kRegionA = 0x0, kRegionASize = 0x2000;
constexpr uint64_t kRegionB = 0x3000, kRegionBSize = 0x1000;
constexpr uint64_t kAddrSpan = 0x4400;  // a little past the end of RAM
constexpr size_t kMaxOps = 256;

const GuestMemory& memory() {
  static const GuestMemory mem({{GuestAddress(kRegionA), kRegionASize}, {GuestAddress(kRegionB), kRegionBSize}});
  return mem;
}

// What a device does with a chain: every segment must be addressable as-is.
uint32_t consume(const GuestMemory& mem, const DescriptorChain& c, uint16_t size) {
  CHECK(c.head < size);
  uint64_t r = 0, w = 0;
  uint8_t sum = 0;
  for (const auto& s : c.readable) {
    auto sl = mem.slice(s.addr, s.len);
    CHECK(sl.has_value());
    for (uint8_t byte : *sl) sum = static_cast<uint8_t>(sum + byte);
    r += s.len;
  }
  for (const auto& s : c.writable) {
    auto sl = mem.slice(s.addr, s.len);
    CHECK(sl.has_value());
    if (!sl->empty()) (*sl)[0] = sum;
    w += s.len;
  }
  CHECK(r == c.readable_bytes && w == c.writable_bytes);
  CHECK(r + w <= UINT32_MAX);
  return static_cast<uint32_t>(w);
}

// --- queue mode ------------------------------------------------------------------

void fuzz_queue(uint8_t mode, Input& in) {
  const GuestMemory& mem = memory();
  constexpr uint16_t kMax = 64;
  Queue q(kMax);
  const uint16_t size = static_cast<uint16_t>(1u << (in.take<uint8_t>() % 7));  // 1..64
  const uint64_t desc = in.take<uint16_t>() % kAddrSpan;
  const uint64_t avail = in.take<uint16_t>() % kAddrSpan;
  const uint64_t used = in.take<uint16_t>() % kAddrSpan;
  const size_t nops = in.take<uint8_t>();
  struct Op {
    uint8_t kind, arg;
    uint16_t value;
  };
  Op ops[kMaxOps];
  for (size_t i = 0; i < nops; ++i) ops[i] = {in.take<uint8_t>(), in.take<uint8_t>(), in.take<uint16_t>()};
  load_memory(mem, in.rest());

  uint64_t features = 0;
  if (mode & 2) features |= feature_bit(VIRTIO_RING_F_INDIRECT_DESC);
  if (mode & 4) features |= feature_bit(VIRTIO_RING_F_EVENT_IDX);
  auto configure = [&] { return fuzz::configure_ring(q, mem, {size, desc, avail, used}, features); };
  if (!configure()) {
    CHECK(!q.ready());
    CHECK(q.pop(mem).status == PopStatus::kEmpty);
    return;
  }

  std::deque<uint16_t> in_flight;  // heads the "device" still owes
  auto pop_one = [&] {
    auto r = q.pop(mem);
    switch (r.status) {
      case PopStatus::kChain:
        consume(mem, r.chain, size);
        in_flight.push_back(r.chain.head);
        break;
      case PopStatus::kMalformed:
        CHECK(r.error != ChainError::kNone && r.chain.head < size);
        CHECK(q.add_used(mem, r.chain.head, 0));  // the head is completable
        break;
      case PopStatus::kBroken: CHECK(q.broken()); break;
      case PopStatus::kEmpty: break;
    }
    CHECK(q.in_flight() == in_flight.size());
    return r.status;
  };

  for (size_t i = 0; i < nops; ++i) {
    const Op& op = ops[i];
    switch (op.kind & 7) {  // bits 3-7 are an operand of POKE
      case 0:
      case 7: pop_one(); break;
      case 1:
        if (!in_flight.empty()) {
          CHECK(q.add_used(mem, in_flight.front(), op.value));
          in_flight.pop_front();
        }
        break;
      case 2: {  // a device bug / double completion: must be refused unless really in flight
        const bool owed = std::find(in_flight.begin(), in_flight.end(), op.value) != in_flight.end();
        CHECK(q.add_used(mem, op.value, 0) == owed);
        if (owed) in_flight.erase(std::find(in_flight.begin(), in_flight.end(), op.value));
        break;
      }
      case 3: {  // the guest rewrites a u16 of RAM under the device's feet
        const uint64_t addr = ((uint64_t{op.arg} << 6) | ((op.kind >> 3) << 1)) % kAddrSpan;
        mem.write_obj<uint16_t>(GuestAddress(addr), op.value);
        break;
      }
      case 4: q.should_notify(mem); break;
      case 5:
        in_flight.clear();
        if (!configure()) return;
        break;
      case 6:  // drain: bounded even if the guest keeps the ring full
        for (int n = 0; n < 2 * size + 2; ++n)
          if (pop_one() != PopStatus::kChain) break;
        break;
    }
  }
  while (!in_flight.empty()) {
    CHECK(q.add_used(mem, in_flight.front(), 0));
    in_flight.pop_front();
  }
  CHECK(q.in_flight() == 0);
}

// --- transport mode ----------------------------------------------------------------

class FuzzDevice : public VirtioDevice {
 public:
  uint32_t device_type() const override { return 4; }  // rng: no config semantics needed
  uint64_t device_features() const override {
    return feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_RING_F_INDIRECT_DESC) |
           feature_bit(VIRTIO_RING_F_EVENT_IDX) | feature_bit(VIRTIO_F_RING_PACKED) | feature_bit(3);
  }
  std::span<const uint16_t> queue_max_sizes() const override { return sizes_; }
  uint32_t config_size() const override { return sizeof(config_); }
  void read_config(uint32_t off, std::span<uint8_t> d) override {
    CHECK(off <= sizeof(config_) && d.size() <= sizeof(config_) - off);
    std::memcpy(d.data(), config_ + off, d.size());
  }
  void write_config(uint32_t off, std::span<const uint8_t> d) override {
    CHECK(off <= sizeof(config_) && d.size() <= sizeof(config_) - off);
    std::memcpy(config_ + off, d.data(), d.size());
  }
  bool activate(const ActivateContext& ctx) override {
    CHECK(!active_);
    CHECK(ctx.queues.size() == 2 && ctx.mem && ctx.interrupt);
    CHECK((ctx.features & feature_bit(VIRTIO_F_VERSION_1)) && !(ctx.features & feature_bit(VIRTIO_F_RING_PACKED)));
    for (const auto& q : ctx.queues)
      if (q.ready()) CHECK(q.validate(*ctx.mem) == QueueConfigError::kOk);
    ctx_ = ctx;
    active_ = true;
    return true;
  }
  void reset() override {
    CHECK(active_);
    active_ = false;
  }
  void process_queue(uint16_t index) override {
    CHECK(active_ && index < ctx_.queues.size());
    Queue& q = ctx_.queues[index];
    for (int n = 0; n < 2 * q.size() + 2; ++n) {
      auto r = q.pop(*ctx_.mem);
      if (r.status == PopStatus::kEmpty) break;
      if (r.status == PopStatus::kBroken) {
        ctx_.interrupt->signal_needs_reset();
        return;
      }
      const uint32_t len = r.status == PopStatus::kChain ? consume(*ctx_.mem, r.chain, q.size()) : 0;
      CHECK(q.add_used(*ctx_.mem, r.chain.head, len));
    }
    if (q.should_notify(*ctx_.mem)) ctx_.interrupt->signal_used_queue(index);
  }

 private:
  const uint16_t sizes_[2] = {64, 8};
  uint8_t config_[16] = {};
  ActivateContext ctx_;
  bool active_ = false;
};

// Registers a driver uses, so that short inputs reach the interesting states.
constexpr uint16_t kRegisters[] = {0x000, 0x004, 0x008, 0x00c, 0x010, 0x014, 0x020, 0x024, 0x030,
                                   0x034, 0x038, 0x044, 0x050, 0x060, 0x064, 0x070, 0x080, 0x084,
                                   0x090, 0x094, 0x0a0, 0x0a4, 0x0ac, 0x0b0, 0x0b4, 0x0fc, 0x100};

// A register page that maps unless told to fail.
class FuzzPage : public RegisterPage {
 public:
  explicit FuzzPage(bool fail) : fail_(fail) {}
  std::span<uint8_t, kSize> bytes() override { return page_; }
  bool set_mapped(bool m) noexcept override {
    if (fail_) return false;
    mapped_ = m;
    return true;
  }
  bool mapped() const { return mapped_; }
  const uint8_t* data() const { return page_; }

 private:
  alignas(kSize) uint8_t page_[kSize] = {};
  bool fail_;
  bool mapped_ = false;
};

constexpr uint16_t kReadableRegisters[] = {0x000, 0x004, 0x008, 0x00c, 0x010, 0x034, 0x044,
                                           0x060, 0x070, 0x0b0, 0x0b4, 0x0b8, 0x0bc, 0x0fc};

// While the guest reads the page, it must read exactly what the registers do.
void check_page(MmioTransport& t, const FuzzPage& page, uint32_t config_size) {
  if (!page.mapped()) return;
  for (uint16_t off : kReadableRegisters) {
    uint8_t reg[4];
    t.read(off, reg);
    CHECK(std::memcmp(reg, page.data() + off, 4) == 0);
  }
  for (uint32_t i = 0; i < config_size; ++i) {
    uint8_t b;
    t.read(MmioTransport::kConfigOffset + i, std::span<uint8_t>(&b, 1));
    CHECK(b == page.data()[MmioTransport::kConfigOffset + i]);
  }
}

void fuzz_transport(uint8_t mode, Input& in) {
  const GuestMemory& mem = memory();
  auto dev = std::make_shared<FuzzDevice>();
  uint64_t irqs = 0;
  MmioTransport t(mem, dev, [&irqs] { ++irqs; });
  // mode bit 1: with a register page; bit 2: one whose mapping fails.
  auto owned_page = std::make_unique<FuzzPage>(mode & 4);
  const FuzzPage* page = (mode & 2) ? owned_page.get() : nullptr;
  if (page) t.set_register_page(std::move(owned_page));
  const size_t nops = in.take<uint8_t>();
  struct Op {
    uint8_t kind;
    uint16_t offset;
    uint32_t value;
  };
  Op ops[kMaxOps];
  for (size_t i = 0; i < nops; ++i) ops[i] = {in.take<uint8_t>(), in.take<uint16_t>(), in.take<uint32_t>()};
  load_memory(mem, in.rest());

  for (size_t i = 0; i < nops; ++i) {
    const Op& op = ops[i];
    // kind: bit 0 write, bits 1-2 access size, bit 3 raw offset, bit 4 notify().
    if (op.kind & 0x10) {
      t.notify(op.value % 4);
      continue;
    }
    const size_t len = size_t{1} << ((op.kind >> 1) & 3);
    const uint64_t offset = (op.kind & 8) ? op.offset % MmioTransport::kWindowSize
                                          : kRegisters[op.offset % std::size(kRegisters)] + (op.offset >> 8) % 16;
    uint8_t buf[8];
    std::memcpy(buf, &op.value, 4);
    std::memcpy(buf + 4, &op.value, 4);
    if (op.kind & 1) {
      t.write(offset, std::span<const uint8_t>(buf, len));
    } else {
      t.read(offset, std::span<uint8_t>(buf, len));
    }
    const uint32_t st = t.status();
    CHECK(!(st & ~0xffu));
    CHECK(!(t.interrupt_status() & ~3u));
    if (t.activated()) CHECK(st & VIRTIO_CONFIG_S_DRIVER_OK);
    if (st & VIRTIO_CONFIG_S_FEATURES_OK) {
      const uint64_t f = t.driver_features();
      CHECK((f & ~t.offered_features()) == 0 && (f & feature_bit(VIRTIO_F_VERSION_1)));
    }
    if (page) {
      CHECK(page->mapped() == t.register_page_mapped());
      check_page(t, *page, dev->config_size());
    }
  }
}

}  // namespace
}  // namespace ksbox::devices::virtio

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ksbox::devices::virtio;
  Input in({data, size});
  const uint8_t mode = in.take<uint8_t>();
  if (mode & 1) {
    fuzz_transport(mode, in);
  } else {
    fuzz_queue(mode, in);
  }
  return 0;
}
