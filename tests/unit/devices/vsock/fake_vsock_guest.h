// The guest's side of a virtio-vsock device for tests: a driver like Linux's
// virtio_transport (rx/tx/event queues in real guest memory, RX buffers
// reposted as they are consumed, kicks through process_queue()), plus host
// socket helpers. The device thread only reaches us through the Interrupt
// callbacks; everything else runs on the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/virtio/ring.h"
#include "devices/vsock/packet.h"
#include "devices/vsock/vsock.h"
#include "vmm/guest_memory.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::vsock::testing {

using namespace std::chrono_literals;

inline constexpr uint64_t kGuestCid = 42;
inline constexpr uint16_t kRingSize = 256;
inline constexpr uint32_t kRxPayload = 4096;  // Linux's VIRTIO_VSOCK_DEFAULT_RX_BUF_SIZE

// How a packet's bytes are spread over descriptors.
enum class Layout {
  kSplit,      // header in one descriptor, payload in another (Linux 6.1); not adjacent in memory
  kSingle,     // one buffer
  kScattered,  // header cut in two, payload in three pieces
  kIndirect,   // kSplit through an indirect table
};

struct Packet {
  Header hdr;
  std::vector<uint8_t> payload;
  uint32_t used_len = 0;
};

// The driver's half of one split ring.
class DriverRing {
 public:
  DriverRing(const GuestMemory& mem, uint64_t base) : mem_(mem), base_(base) {}
  uint64_t desc_addr() const { return base_; }
  uint64_t avail_addr() const { return base_ + 0x1000; }
  uint64_t used_addr() const { return base_ + 0x2000; }

  void configure(virtio::Queue& q) const {
    ASSERT_TRUE(q.set_size(kRingSize));
    ASSERT_TRUE(q.set_desc_table(GuestAddress(desc_addr())));
    ASSERT_TRUE(q.set_avail_ring(GuestAddress(avail_addr())));
    ASSERT_TRUE(q.set_used_ring(GuestAddress(used_addr())));
    ASSERT_EQ(q.set_ready(mem_, true), virtio::QueueConfigError::kOk);
  }
  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) const {
    desc_at(desc_addr(), i, addr, len, flags, next);
  }
  void desc_at(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) const {
    ASSERT_TRUE(mem_.write_obj(GuestAddress(table + 16ull * i), virtio::Desc{addr, len, flags, next}));
  }
  void publish(uint16_t head) {
    mem_.write_obj<uint16_t>(GuestAddress(avail_addr() + 4 + 2ull * (avail_idx_ % kRingSize)), head);
    std::atomic_thread_fence(std::memory_order_release);  // entry before idx, as virtio_wmb()
    ++avail_idx_;
    mem_.write_obj<uint16_t>(GuestAddress(avail_addr() + 2), avail_idx_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  std::optional<virtio::UsedElem> next_used() {
    const uint16_t idx = mem_.read_obj<uint16_t>(GuestAddress(used_addr() + 2)).value_or(0);
    if (idx == last_used_) return std::nullopt;
    std::atomic_thread_fence(std::memory_order_acquire);
    auto e = mem_.read_obj<virtio::UsedElem>(GuestAddress(used_addr() + 4 + 8ull * (last_used_ % kRingSize)));
    ++last_used_;
    return e;
  }
  // EVENT_IDX: interrupt me after the next completion.
  void rearm_interrupt() const {
    mem_.write_obj<uint16_t>(GuestAddress(avail_addr() + 4 + 2ull * kRingSize), last_used_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  uint16_t used_idx() const { return mem_.read_obj<uint16_t>(GuestAddress(used_addr() + 2)).value_or(0); }
  uint16_t avail_idx() const { return avail_idx_; }

 private:
  const GuestMemory& mem_;
  uint64_t base_;
  uint16_t avail_idx_ = 0;
  uint16_t last_used_ = 0;
};

class FakeVsockGuest : public virtio::Interrupt {
 public:
  struct Seg {
    uint64_t addr;
    uint32_t len;
  };

  FakeVsockGuest(VirtioVsock& dev, Layout rx_layout = Layout::kSplit, std::optional<uint64_t> features = {})
      : dev_(dev),
        rx_layout_(rx_layout),
        features_(features.value_or(dev.device_features())),
        mem_({{GuestAddress(0), 16ull << 20}}),
        rx_(mem_, kRxRings),
        tx_(mem_, kRxRings + 0x4000),
        ev_(mem_, kRxRings + 0x8000) {}
  ~FakeVsockGuest() override {
    if (active_) dev_.reset();  // as the transport does: the device lets go of our queues first
  }

  // The driver sets DRIVER_OK with `rx_buffers` RX buffers posted.
  void activate(size_t rx_buffers = 64) {
    for (auto& q : queues_) q.set_features(features_);
    rx_.configure(queues_[0]);
    tx_.configure(queues_[1]);
    ev_.configure(queues_[2]);
    ASSERT_TRUE(dev_.activate({features_, queues_, &mem_, this}));
    active_ = true;
    post_rx(rx_buffers);
  }
  void reset_device() {
    dev_.reset();
    active_ = false;
    for (auto& q : queues_) q.reset();
  }

  // Posts `n` more RX buffers and kicks.
  void post_rx(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      ASSERT_LT(rx_slots_.size(), max_rx_slots());
      const size_t slot = rx_slots_.size();
      rx_slots_.push_back(write_rx_slot(slot));
      rx_heads_[rx_slots_.back().head] = slot;
      rx_.publish(rx_slots_.back().head);
    }
    rx_.rearm_interrupt();
    dev_.process_queue(0);
  }
  // Consumed RX buffers go back to the device (default), or not.
  void set_auto_repost(bool on) { auto_repost_ = on; }
  // Posts an RX chain made of raw descriptors (for refusal tests).
  void post_raw_rx(uint16_t head, uint64_t addr, uint32_t len, uint16_t flags) {
    rx_.desc(head, addr, len, flags);
    rx_.publish(head);
    dev_.process_queue(0);
  }

  // Sends a packet over TX with the given descriptor layout.
  void send(const Header& h, std::span<const uint8_t> payload = {}, Layout layout = Layout::kSplit) {
    std::vector<uint8_t> bytes(kHeaderSize + payload.size());
    const auto wire = encode(h);
    std::memcpy(bytes.data(), wire.data(), kHeaderSize);
    if (!payload.empty()) std::memcpy(bytes.data() + kHeaderSize, payload.data(), payload.size());
    send_bytes(bytes, layout);
  }
  // Any bytes as one TX chain (the header may be broken on purpose).
  void send_bytes(std::span<const uint8_t> bytes, Layout layout = Layout::kSplit) {
    const uint16_t slot = free_tx_slot();
    const uint64_t base = kTxBufs + uint64_t{slot} * kTxSlotBytes;
    ASSERT_LE(bytes.size(), kTxSlotBytes - 0x1000);
    const uint16_t d = static_cast<uint16_t>(slot * 4);
    const uint32_t n = static_cast<uint32_t>(bytes.size());
    const uint32_t hdr = std::min<uint32_t>(n, kHeaderSize);
    std::vector<Seg> segs;
    switch (layout) {
      case Layout::kSingle: segs = {{base, n}}; break;
      case Layout::kSplit:
      case Layout::kIndirect:
        segs = {{base, hdr}};
        if (n > hdr) segs.push_back({base + 0x800, n - hdr});  // not adjacent to the header
        break;
      case Layout::kScattered: {
        const uint32_t a = std::min<uint32_t>(n, 20);
        segs = {{base, a}};
        if (n > a) segs.push_back({base + 0x100, std::min<uint32_t>(n - a, 30)});  // 24 of header + 6
        if (n > 50) segs.push_back({base + 0x200, std::min<uint32_t>(n - 50, 100)});
        if (n > 150) segs.push_back({base + 0x400, n - 150});
        break;
      }
    }
    uint32_t off = 0;
    for (const auto& s : segs) {
      ASSERT_TRUE(mem_.write_bytes(GuestAddress(s.addr), bytes.subspan(off, s.len)));
      off += s.len;
    }
    if (layout == Layout::kIndirect) {
      const uint64_t table = kTxTables + uint64_t{slot} * 64;
      for (size_t i = 0; i < segs.size(); ++i) {
        const bool last = i + 1 == segs.size();
        tx_.desc_at(table, static_cast<uint16_t>(i), segs[i].addr, segs[i].len, last ? 0 : VRING_DESC_F_NEXT,
                    static_cast<uint16_t>(i + 1));
      }
      tx_.desc(d, table, static_cast<uint32_t>(16 * segs.size()), VRING_DESC_F_INDIRECT);
    } else {
      for (size_t i = 0; i < segs.size(); ++i) {
        const bool last = i + 1 == segs.size();
        tx_.desc(static_cast<uint16_t>(d + i), segs[i].addr, segs[i].len, last ? 0 : VRING_DESC_F_NEXT,
                 static_cast<uint16_t>(d + i + 1));
      }
    }
    tx_busy_[slot] = true;
    tx_.publish(d);
    dev_.process_queue(1);
  }
  // Publishes a TX chain of raw descriptors (head = first), for malformed chains.
  void send_raw_chain(std::span<const virtio::Desc> descs) {
    const uint16_t slot = free_tx_slot();
    const uint16_t d = static_cast<uint16_t>(slot * 4);
    for (size_t i = 0; i < descs.size(); ++i)
      tx_.desc(static_cast<uint16_t>(d + i), descs[i].addr, descs[i].len, descs[i].flags,
               static_cast<uint16_t>(d + descs[i].next));
    tx_busy_[slot] = true;
    tx_.publish(d);
    dev_.process_queue(1);
  }
  // Publishes any head value, valid or not, and kicks.
  void publish_raw_tx_head(uint16_t head) {
    tx_.publish(head);
    dev_.process_queue(1);
  }
  void publish_raw_rx_head(uint16_t head) {
    rx_.publish(head);
    dev_.process_queue(0);
  }
  // TX chains the device has completed so far.
  uint16_t tx_used() const { return tx_.used_idx(); }
  uint16_t tx_published() const { return tx_.avail_idx(); }
  void kick_tx() { dev_.process_queue(1); }

  // The next packet from the device, waiting up to `timeout`.
  std::optional<Packet> recv(std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      harvest_rx();
      if (!received_.empty()) {
        Packet p = std::move(received_.front());
        received_.pop_front();
        return p;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::unique_lock lock(irq_mu_);
      irq_cv_.wait_for(lock, 2ms, [&] { return irq_pending_; });
      irq_pending_ = false;
    }
  }
  // The next packet that is not a CREDIT_UPDATE (those only update `peer`).
  std::optional<Packet> recv_skip_credit(std::chrono::milliseconds timeout = 3000ms) {
    for (;;) {
      auto p = recv(timeout);
      if (!p || p->hdr.op != VIRTIO_VSOCK_OP_CREDIT_UPDATE) return p;
    }
  }
  size_t rx_buffers_used() const { return rx_used_total_; }
  const GuestMemory& mem() const { return mem_; }

  // virtio::Interrupt, called by the device thread.
  void signal_used_queue(uint16_t) override {
    irqs.fetch_add(1);
    std::lock_guard lock(irq_mu_);
    irq_pending_ = true;
    irq_cv_.notify_one();
  }
  void signal_config_change() override {}
  void signal_needs_reset() override { needs_reset.fetch_add(1); }
  std::atomic<int> irqs{0}, needs_reset{0};

 private:
  static constexpr uint64_t kRxRings = 0x10000;
  static constexpr uint64_t kRxTables = 0x20000, kTxTables = 0x28000;
  static constexpr uint64_t kRxBufs = 0x100000, kRxSlotBytes = 0x2000;
  static constexpr uint64_t kTxBufs = 0x400000, kTxSlotBytes = 0x12000;
  static constexpr uint16_t kTxSlots = 64;

  struct RxSlot {
    uint16_t head;
    std::vector<Seg> segs;
  };

  size_t max_rx_slots() const {
    return rx_layout_ == Layout::kIndirect ? kRingSize : rx_layout_ == Layout::kScattered ? kRingSize / 4
                                                                                          : kRingSize / 2;
  }

  RxSlot write_rx_slot(size_t slot) {
    const uint64_t base = kRxBufs + slot * kRxSlotBytes;
    RxSlot s;
    uint16_t d = 0;
    switch (rx_layout_) {
      case Layout::kSplit:
      case Layout::kIndirect:
        s.segs = {{base, kHeaderSize}, {base + 0x100, kRxPayload}};
        d = static_cast<uint16_t>(rx_layout_ == Layout::kIndirect ? slot : 2 * slot);
        break;
      case Layout::kSingle:
        s.segs = {{base, kHeaderSize + kRxPayload}};
        d = static_cast<uint16_t>(2 * slot);
        break;
      case Layout::kScattered:
        s.segs = {{base, 10}, {base + 0x40, 40}, {base + 0x100, 1000}, {base + 0x600, kRxPayload - 1006}};
        d = static_cast<uint16_t>(4 * slot);
        break;
    }
    s.head = d;
    if (rx_layout_ == Layout::kIndirect) {
      const uint64_t table = kRxTables + slot * 32;
      rx_.desc_at(table, 0, s.segs[0].addr, s.segs[0].len, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
      rx_.desc_at(table, 1, s.segs[1].addr, s.segs[1].len, VRING_DESC_F_WRITE, 0);
      rx_.desc(d, table, 32, VRING_DESC_F_INDIRECT);
      return s;
    }
    for (size_t i = 0; i < s.segs.size(); ++i) {
      const bool last = i + 1 == s.segs.size();
      rx_.desc(static_cast<uint16_t>(d + i), s.segs[i].addr, s.segs[i].len,
               static_cast<uint16_t>(VRING_DESC_F_WRITE | (last ? 0 : VRING_DESC_F_NEXT)),
               static_cast<uint16_t>(d + i + 1));
    }
    return s;
  }

  void harvest_rx() {
    bool reposted = false;
    while (auto u = rx_.next_used()) {
      ++rx_used_total_;
      const auto it = rx_heads_.find(static_cast<uint16_t>(u->id));
      if (it == rx_heads_.end()) continue;  // a raw chain
      const RxSlot& slot = rx_slots_[it->second];
      std::vector<uint8_t> bytes;
      for (const auto& s : slot.segs) {
        auto host = mem_.slice(GuestAddress(s.addr), s.len);
        bytes.insert(bytes.end(), host->begin(), host->end());
      }
      Packet p;
      p.used_len = u->len;
      EXPECT_GE(u->len, kHeaderSize);
      EXPECT_LE(u->len, bytes.size());
      if (u->len >= kHeaderSize && u->len <= bytes.size()) {
        p.hdr = decode(std::span<const uint8_t, kHeaderSize>(bytes.data(), kHeaderSize));
        p.payload.assign(bytes.begin() + kHeaderSize, bytes.begin() + u->len);
        EXPECT_EQ(p.hdr.len, u->len - kHeaderSize);
        EXPECT_EQ(p.hdr.src_cid, kHostCid);
        EXPECT_EQ(p.hdr.dst_cid, kGuestCid);
        EXPECT_EQ(p.hdr.type, VIRTIO_VSOCK_TYPE_STREAM);
      }
      received_.push_back(std::move(p));
      if (auto_repost_) {
        rx_.publish(slot.head);
        reposted = true;
      }
    }
    rx_.rearm_interrupt();
    if (reposted) dev_.process_queue(0);
    while (auto u = tx_.next_used()) tx_busy_[u->id / 4] = false;
    tx_.rearm_interrupt();
  }

  uint16_t free_tx_slot() {
    for (int attempt = 0; attempt < 2000; ++attempt) {
      while (auto u = tx_.next_used()) tx_busy_[u->id / 4] = false;
      for (uint16_t s = 0; s < kTxSlots; ++s)
        if (!tx_busy_[s]) return s;
      std::this_thread::sleep_for(1ms);
    }
    ADD_FAILURE() << "no free TX slot: the device stopped consuming TX";
    return 0;
  }

  VirtioVsock& dev_;
  const Layout rx_layout_;
  const uint64_t features_;
  GuestMemory mem_;
  virtio::Queue queues_[3] = {virtio::Queue(kRingSize), virtio::Queue(kRingSize), virtio::Queue(kRingSize)};
  DriverRing rx_, tx_, ev_;
  bool active_ = false;
  bool auto_repost_ = true;
  std::vector<RxSlot> rx_slots_;
  std::map<uint16_t, size_t> rx_heads_;
  bool tx_busy_[kTxSlots] = {};
  std::deque<Packet> received_;
  size_t rx_used_total_ = 0;
  std::mutex irq_mu_;
  std::condition_variable irq_cv_;
  bool irq_pending_ = false;
};

// One stream as the guest kernel sees it: addressing and credit (Linux's
// virtio_transport_common rules: a CREDIT_UPDATE when free space drops
// below 64 KiB).
struct GuestStream {
  FakeVsockGuest& g;
  uint32_t guest_port;
  uint32_t host_port;
  uint32_t buf_alloc = 256 * 1024;
  uint32_t fwd_cnt = 0, last_fwd_sent = 0;
  uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0, tx_cnt = 0;

  Header hdr(uint16_t op, uint32_t len = 0, uint32_t flags = 0) {
    Header h;
    h.src_cid = kGuestCid;
    h.dst_cid = kHostCid;
    h.src_port = guest_port;
    h.dst_port = host_port;
    h.len = len;
    h.op = op;
    h.flags = flags;
    h.buf_alloc = buf_alloc;
    h.fwd_cnt = fwd_cnt;
    last_fwd_sent = fwd_cnt;
    return h;
  }
  void send(uint16_t op, uint32_t flags = 0) { g.send(hdr(op, 0, flags)); }
  void send_data(std::span<const uint8_t> data, Layout layout = Layout::kSplit) {
    g.send(hdr(VIRTIO_VSOCK_OP_RW, static_cast<uint32_t>(data.size())), data, layout);
    tx_cnt += static_cast<uint32_t>(data.size());
  }
  void send_data(std::string_view s) { send_data({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
  // Takes the credit fields of a packet from the device.
  void observe(const Packet& p) {
    peer_buf_alloc = p.hdr.buf_alloc;
    peer_fwd_cnt = p.hdr.fwd_cnt;
  }
  uint32_t credit() const { return peer_buf_alloc - (tx_cnt - peer_fwd_cnt); }
  // The application read `n` bytes.
  void consumed(uint32_t n) {
    fwd_cnt += n;
    if (buf_alloc - (fwd_cnt - last_fwd_sent) < 64 * 1024) send(VIRTIO_VSOCK_OP_CREDIT_UPDATE);
  }
  bool is_for_me(const Packet& p) const { return p.hdr.dst_port == guest_port && p.hdr.src_port == host_port; }
};

// --- Host side helpers ---------------------------------------------------------------

inline UniqueFd connect_host(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return {};
  timeval tv{5, 0};  // no test may hang on a socket
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

inline UniqueFd listen_host(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd.get(), 128) < 0)
    return {};
  return fd;
}

inline UniqueFd accept_host(int listener, int timeout_ms = 3000) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return {};
  UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

inline bool write_all(int fd, std::span<const uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data = data.subspan(static_cast<size_t>(n));
  }
  return true;
}
inline bool write_all(int fd, std::string_view s) {
  return write_all(fd, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

// Exactly `n` bytes, or fewer on EOF/error/timeout.
inline std::string read_n(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

// One line without its '\n' (byte by byte: nothing after it is consumed).
inline std::string read_line(int fd) {
  std::string line;
  char c;
  while (line.size() < 64 && ::recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') return line;
    line += c;
  }
  return line + "<no newline>";
}

// Whether the peer closed `fd` (EOF or reset) within `timeout_ms`, with no
// data before that.
inline bool closed_without_data(int fd, int timeout_ms = 1000) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return false;
  char c;
  const ssize_t r = ::recv(fd, &c, 1, MSG_DONTWAIT);
  return r == 0 || (r < 0 && errno == ECONNRESET);
}

}  // namespace ksbox::devices::vsock::testing
