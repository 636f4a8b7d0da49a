// libFuzzer target for the virtio-vsock device (devices/vsock/): the packet
// parser and RX writers on arbitrary chains, and the whole device driven by
// arbitrary guest memory, rings and kicks, with real host sockets around it.
//
// Input: byte 0 picks the mode (bit 0: 0 = packet, 1 = device).
//  - packet: byte 1 = number of segments n (mod 9), then n x (u16 address,
//    u16 length) into guest RAM (some may stick out of it); the rest is RAM.
//    parse_tx() must agree with a byte-by-byte reference decoder; the RX
//    helpers must stay inside the segments.
//  - device: byte 1 = ring features (bit 0 event idx, bit 1 indirect),
//    byte 2 = op count (at most 64), 4 bytes per op, then RAM. Rings of 16
//    entries sit at fixed places (rx 0x0000, tx 0x1000, event 0x2000: desc,
//    +0x200 avail, +0x400 used). Ops kick queues, rewrite guest RAM, and act
//    as host clients (CONNECT lines, writes, closes) and as host servers for
//    guest connections to port 1.
// RAM: region A [0, 0x10000), a gap, region B [0x20000, 0x30000).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/vsock/packet.h"
#include "devices/vsock/vsock.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_guest_memory.h"
#include "vmm/guest_memory.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::vsock {
namespace {

using fuzz::Input;

constexpr uint64_t kRegionA = 0, kRegionASize = 0x10000;
constexpr uint64_t kRegionB = 0x20000, kRegionBSize = 0x10000;
constexpr uint64_t kCid = 3;
constexpr uint16_t kRing = 16;

const GuestMemory& memory() {
  static const GuestMemory mem({{GuestAddress(kRegionA), kRegionASize}, {GuestAddress(kRegionB), kRegionBSize}});
  return mem;
}

// Byte `i` of the concatenated segments, the slow obvious way.
std::optional<uint8_t> byte_at(const std::vector<virtio::Segment>& segs, uint64_t i) {
  for (const auto& s : segs) {
    if (i < s.len) {
      auto b = memory().read_obj<uint8_t>(GuestAddress(s.addr.value() + i));
      return b;
    }
    i -= s.len;
  }
  return std::nullopt;
}

bool inside_ram(const void* p, size_t len) {
  for (const auto& r : memory().regions()) {
    const auto* h = static_cast<const uint8_t*>(p);
    if (h >= r.host && h + len <= r.host + r.size) return true;
  }
  return false;
}

// --- packet mode ------------------------------------------------------------------

void fuzz_packet(Input& in) {
  const size_t n = in.take<uint8_t>() % 9;
  virtio::DescriptorChain chain;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t addr = in.take<uint16_t>() * uint64_t{3};  // reaches region B and past it
    const uint32_t len = in.take<uint16_t>() % 0x2000;
    chain.readable.push_back({GuestAddress(addr), len});
    chain.readable_bytes += len;
  }
  fuzz::load_memory(memory(), in.rest());
  const GuestMemory& mem = memory();
  bool all_mapped = true;
  for (const auto& s : chain.readable) all_mapped &= mem.slice(s.addr, s.len).has_value();

  // Reference: the header byte by byte, then the checks in the documented order.
  const auto r = parse_tx(mem, chain, kCid);
  if (chain.readable_bytes < kHeaderSize) {
    CHECK(r.refusal == Refusal::kShortHeader);
  } else {
    std::array<uint8_t, kHeaderSize> wire{};
    bool readable = true;
    for (uint32_t i = 0; i < kHeaderSize; ++i) {
      auto b = byte_at(chain.readable, i);
      if (!b) readable = false;
      wire[i] = b.value_or(0);
    }
    if (!readable) {
      CHECK(r.refusal == Refusal::kMalformedChain);
    } else {
      const Header h = decode(wire);
      Refusal want = Refusal::kNone;
      if (h.len > kMaxPayload) want = Refusal::kOversizedPayload;
      else if (h.len > chain.readable_bytes - kHeaderSize) want = Refusal::kBadLength;
      else if (h.type != VIRTIO_VSOCK_TYPE_STREAM) want = Refusal::kBadType;
      else if (h.src_cid != kCid) want = Refusal::kBadSrcCid;
      else if (h.dst_cid != kHostCid) want = Refusal::kBadDstCid;
      else if (h.op < VIRTIO_VSOCK_OP_REQUEST || h.op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) want = Refusal::kUnknownOp;
      CHECK(r.refusal == want);
      if (want == Refusal::kNone) {
        CHECK(r.packet.hdr == h);
        uint64_t total = 0;
        for (const auto& s : r.packet.payload) total += s.len;
        CHECK(total == (h.op == VIRTIO_VSOCK_OP_RW ? h.len : 0));
        // The payload is exactly the bytes after the header.
        uint64_t i = kHeaderSize;
        for (const auto& s : r.packet.payload) {
          auto host = mem.slice(s.addr, s.len);
          CHECK(host.has_value() == (all_mapped || mem.slice(s.addr, s.len).has_value()));
          for (uint32_t k = 0; host && k < s.len; ++k, ++i) CHECK((*host)[k] == byte_at(chain.readable, i));
          if (!host) i += s.len;
        }
      }
    }
  }

  // The same segments as an RX chain.
  virtio::DescriptorChain rx;
  rx.writable = chain.readable;
  rx.writable_bytes = chain.readable_bytes;
  if (!all_mapped) return;  // the queue only hands out mapped segments
  Header h;
  h.src_cid = kHostCid;
  h.dst_cid = kCid;
  h.op = VIRTIO_VSOCK_OP_RW;
  CHECK(write_rx_header(mem, rx, h) == (rx.writable_bytes >= kHeaderSize));
  std::vector<iovec> iov;
  const uint32_t max = static_cast<uint32_t>(chain.readable_bytes / 2 + 1);
  const size_t covered = rx_payload_iovecs(mem, rx, max, iov);
  size_t sum = 0;
  for (const auto& v : iov) {
    CHECK(inside_ram(v.iov_base, v.iov_len));
    sum += v.iov_len;
  }
  CHECK(sum == covered);
  CHECK(covered <= std::min(max, rx_payload_capacity(rx)));
  std::vector<uint8_t> data(rx_payload_capacity(rx) + 3);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);
  const uint32_t wrote = write_rx_payload(mem, rx, data);
  CHECK(wrote == rx_payload_capacity(rx));
  if (rx.writable_bytes >= kHeaderSize) {
    // Segments may overlap each other; only check when they do not.
    bool overlap = false;
    for (size_t a = 0; a < rx.writable.size(); ++a)
      for (size_t b = a + 1; b < rx.writable.size(); ++b) {
        const uint64_t a0 = rx.writable[a].addr.value(), a1 = a0 + rx.writable[a].len;
        const uint64_t b0 = rx.writable[b].addr.value(), b1 = b0 + rx.writable[b].len;
        overlap |= a0 < b1 && b0 < a1;
      }
    if (!overlap)
      for (uint32_t i = 0; i < wrote; i += 97) CHECK(byte_at(rx.writable, kHeaderSize + i) == data[i]);
  }
}

// --- device mode -------------------------------------------------------------------

// The rx and tx used rings (flags, idx, 16 entries, avail_event).
bool in_used_ring(uint64_t addr) {
  for (const uint64_t used : {uint64_t{0x0400}, uint64_t{0x1400}})
    if (addr + 2 > used && addr < used + 6 + 8 * kRing) return true;
  return false;
}

using fuzz::NullInterrupt;

UniqueFd unix_socket() { return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)); }

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

// One device for the whole run (binding a socket per input would dominate).
struct Env {
  Env() {
    char tmpl[] = "/tmp/ksbox-vsock-fuzz-XXXXXX";
    CHECK(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    MuxerLimits limits;
    limits.max_connections = 8;
    limits.max_pending_clients = 4;
    limits.max_rst_backlog = 4;
    limits.connect_timeout = std::chrono::milliseconds(20);
    dev = std::make_unique<VirtioVsock>(dir + "/v.sock", kCid, limits);
    server = unix_socket();
    const auto a = address(dir + "/v.sock_1");  // guest connections to host port 1 land here
    CHECK(::bind(server.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    CHECK(::listen(server.get(), 64) == 0);
  }
  ~Env() {
    dev.reset();
    server.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
  std::unique_ptr<VirtioVsock> dev;
  UniqueFd server;
};

Env& env() {
  static Env e;
  return e;
}

void configure(virtio::Queue& q, uint64_t base, uint64_t features) {
  CHECK(fuzz::configure_ring(q, memory(), {kRing, base, base + 0x200, base + 0x400}, features));
}

void fuzz_device(Input& in) {
  Env& e = env();
  const GuestMemory& mem = memory();
  const uint8_t fbits = in.take<uint8_t>();
  uint64_t features = virtio::feature_bit(VIRTIO_F_VERSION_1);
  if (fbits & 1) features |= virtio::feature_bit(VIRTIO_RING_F_EVENT_IDX);
  if (fbits & 2) features |= virtio::feature_bit(VIRTIO_RING_F_INDIRECT_DESC);
  const size_t nops = std::min<size_t>(in.take<uint8_t>(), 64);
  struct Op {
    uint8_t kind, arg;
    uint16_t value;
  };
  std::vector<Op> ops(nops);
  for (auto& op : ops) op = {in.take<uint8_t>(), in.take<uint8_t>(), in.take<uint16_t>()};
  fuzz::load_memory(memory(), in.rest());

  virtio::Queue queues[3] = {virtio::Queue(kRing), virtio::Queue(kRing), virtio::Queue(kRing)};
  configure(queues[0], 0x0000, features);
  configure(queues[1], 0x1000, features);
  configure(queues[2], 0x2000, features);
  NullInterrupt irq;
  CHECK(e.dev->activate({features, queues, &mem, &irq}));

  std::vector<UniqueFd> host;  // clients of the device's listener, and accepted guest streams
  auto accept_all = [&] {
    while (host.size() < 16) {
      UniqueFd fd(::accept4(e.server.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd) break;
      host.push_back(std::move(fd));
    }
  };
  for (const Op& op : ops) {
    switch (op.kind & 7) {
      case 0: e.dev->process_queue(1); break;
      case 1: e.dev->process_queue(0); break;
      case 2: e.dev->process_queue(static_cast<uint16_t>(2 + (op.kind >> 3) % 2 * 100)); break;  // event, or out of range
      case 3: {  // the guest rewrites RAM under the device's feet (not the used rings: checked below)
        const uint64_t addr = ((uint64_t{op.arg} << 8 | (op.kind & 0xf8)) % kRegionASize) & ~uint64_t{1};
        if (!in_used_ring(addr)) mem.write_obj<uint16_t>(GuestAddress(addr), op.value);
        break;
      }
      case 4: {  // a host client asks for a guest port
        if (host.size() >= 16) break;
        UniqueFd fd = unix_socket();
        const auto a = address(e.dir + "/v.sock");
        if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) break;
        const std::string line = (op.arg & 1) ? "CONNECT " + std::to_string(op.value) + "\n" : "CONNECT x\n";
        [[maybe_unused]] auto n = ::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL);
        host.push_back(std::move(fd));
        break;
      }
      case 5: {  // a host socket sends
        accept_all();
        if (host.empty()) break;
        std::vector<uint8_t> data(size_t{op.arg} * 64 + 1, static_cast<uint8_t>(op.value));
        [[maybe_unused]] auto n =
            ::send(host[op.value % host.size()].get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        break;
      }
      case 6:  // a host socket goes away
        accept_all();
        if (!host.empty()) host.erase(host.begin() + static_cast<ptrdiff_t>(op.value % host.size()));
        break;
      case 7: std::this_thread::sleep_for(std::chrono::microseconds(op.arg * 4)); break;  // the device thread acts
    }
  }
  e.dev->reset();  // from here on the device must not touch the queues
  CHECK(e.dev->stats().connections == 0);

  // Completions the device published: TX writes nothing, RX a header and
  // at most 64 KiB of payload (or nothing, for a refused buffer).
  for (const uint64_t base : {uint64_t{0x0000}, uint64_t{0x1000}}) {
    const virtio::Queue& q = queues[base / 0x1000];
    const uint16_t used = q.next_used();
    if (used == 0) continue;
    CHECK(mem.read_obj<uint16_t>(GuestAddress(base + 0x400 + 2)) == used);
    for (uint16_t i = 0; i < std::min<uint16_t>(used, kRing); ++i) {
      const auto u = mem.read_obj<virtio::UsedElem>(GuestAddress(base + 0x400 + 4 + 8 * i)).value();
      CHECK(u.id < kRing);
      if (base == 0x1000) {
        CHECK(u.len == 0);
      } else {
        CHECK(u.len == 0 || (u.len >= kHeaderSize && u.len <= kHeaderSize + kMaxPayload));
      }
    }
  }
  for (auto& q : queues) q.reset();
}

}  // namespace
}  // namespace ksbox::devices::vsock

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ksbox::devices::vsock;
  return ksbox::fuzz::run_by_mode(data, size, fuzz_packet, fuzz_device);
}
