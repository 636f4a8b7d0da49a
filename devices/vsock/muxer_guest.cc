// The muxer's guest side: packets from the TX queue dispatched per stream,
// and control packets (REQUEST, RESPONSE, CREDIT_UPDATE, SHUTDOWN, RST)
// delivered into RX buffers as the guest posts them.
#include <sys/socket.h>

#include <algorithm>

#include <fmt/format.h>

#include "devices/vsock/muxer.h"

namespace ksbox::devices::vsock {

Connection* Muxer::find(const ConnKey& key) {
  const auto it = conns_.find(key);
  return it == conns_.end() ? nullptr : it->second.get();
}

void Muxer::free_connection(const ConnKey& key) {
  const auto it = conns_.find(key);
  if (it == conns_.end()) return;
  // No stale entries: a guest cycling REQUEST/RST must not grow the queues.
  if (it->second->in_ctl_queue) std::erase(ctl_queue_, key);
  if (it->second->blocked_on_buffers) std::erase(rx_waiters_, key);
  conn_ids_.erase(it->second->id());
  conns_.erase(it);  // closes the host socket, which leaves the epoll set
}

// --- TX: guest → host ---------------------------------------------------------------

void Muxer::process_tx() {
  // Bounded per call, so a guest that keeps the ring full cannot hold the
  // lock forever; the device thread continues through the kick eventfd.
  constexpr int kChainsPerCall = 512;
  for (int n = 0;; ++n) {
    if (buffered_to_host_ >= limits_.max_buffered_to_host) {
      // Host sockets are not keeping up: leave the guest's packets on the
      // ring until they take some (pump_rx() restarts us).
      if (!tx_buffer_full_) {
        bump(tx_buffer_stalls_);
        tx_full_since_ = Clock::now();
        arm_timer(*tx_full_since_ + limits_.linger_timeout);
      }
      tx_buffer_full_ = true;
      break;
    }
    if (rst_backlog_.size() >= limits_.max_rst_backlog) {
      pump_rx();
      if (rst_backlog_.size() >= limits_.max_rst_backlog) {
        // No RX buffers for our answers: leave the guest's packets on the
        // ring until it posts some (pump_rx() restarts us).
        if (!tx_stalled_) bump(tx_stalls_);
        tx_stalled_ = true;
        break;
      }
    }
    if (n == kChainsPerCall) {
      self_kick();
      break;
    }
    auto item = guest_->pop_tx();
    if (item.kind == GuestQueues::TxItem::kEmpty || item.kind == GuestQueues::TxItem::kBroken) break;
    if (item.kind == GuestQueues::TxItem::kPacket) handle_packet(item.packet);
    // Completed only now: the payload has been written or copied out.
    guest_->complete_tx(item.head);
  }
  pump_rx();
}

void Muxer::handle_packet(const TxPacket& p) {
  const Header& h = p.hdr;
  const ConnKey key{h.dst_port, h.src_port};
  Connection* c = find(key);
  if (h.op == VIRTIO_VSOCK_OP_RST) {
    // Never answered: an RST for an unknown stream is simply dropped.
    if (c) {
      if (c->state() == Connection::State::kConnecting) bump(host_failed_);
      free_connection(key);
    }
    return;
  }
  if (h.op == VIRTIO_VSOCK_OP_REQUEST) {
    on_guest_request(key, h);
    return;
  }
  if (!c) {
    refuse(Refusal::kUnknownConnection);
    queue_rst_reply(h);
    return;
  }
  if (c->state() == Connection::State::kClosed) return;  // our RST is on its way
  c->update_peer_credit(h.buf_alloc, h.fwd_cnt);
  if (c->blocked_on_credit && c->peer_credit() > 0) {
    c->blocked_on_credit = false;
    update_interest(*c);
  }
  if (h.op == VIRTIO_VSOCK_OP_RESPONSE) {
    if (c->state() != Connection::State::kConnecting) {
      refuse(Refusal::kUnexpectedOp);
      kill(*c);
      return;
    }
    on_guest_response(*c);
    return;
  }
  if (c->state() != Connection::State::kEstablished) {
    refuse(Refusal::kUnexpectedOp);
    kill(*c);
    return;
  }
  switch (h.op) {
    case VIRTIO_VSOCK_OP_SHUTDOWN: on_guest_shutdown(*c, h.flags); break;
    case VIRTIO_VSOCK_OP_RW: on_guest_rw(*c, p); break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST: queue_control(*c, Connection::kPendCreditUpdate); break;
    default: break;  // CREDIT_UPDATE: its credit fields were all it had to say
  }
}

void Muxer::on_guest_request(const ConnKey& key, const Header& h) {
  if (Connection* old = find(key)) {
    if (old->state() != Connection::State::kClosed) {
      refuse(Refusal::kDuplicateRequest);
      kill(*old);
      return;
    }
    // Only our RST for the old stream was left, and the guest has moved on:
    // sent now, it would reset the new stream. Drop it and serve the REQUEST.
    free_connection(key);
  }
  // Likewise RSTs we owe for earlier packets on this tuple.
  std::erase_if(rst_backlog_,
                [&](const Header& r) { return r.src_port == key.host_port && r.dst_port == key.guest_port; });
  if (conns_.size() >= limits_.max_connections) {
    refuse(Refusal::kConnectionLimit);
    queue_rst_reply(h);
    return;
  }
  UniqueFd fd = connect_unix(fmt::format("{}_{}", path(), key.host_port));
  if (!fd) {
    bump(guest_failed_);
    queue_rst_reply(h);
    return;
  }
  const uint64_t id = next_id_++;
  auto conn = std::make_unique<Connection>(key, id, std::move(fd), Connection::State::kEstablished, false,
                                           &buffered_to_host_);
  conn->update_peer_credit(h.buf_alloc, h.fwd_cnt);
  Connection& c = *conn;
  conns_.emplace(key, std::move(conn));
  conn_ids_.emplace(id, key);
  bump(guest_ok_);
  queue_control(c, Connection::kPendResponse);
  update_interest(c);
}

void Muxer::on_guest_response(Connection& c) {
  c.set_established();
  c.deadline.reset();
  const std::string ok = fmt::format("OK {}\n", c.key().host_port);
  // A fresh socket's buffer always takes a few bytes; failing means the client left.
  if (::send(c.fd(), ok.data(), ok.size(), MSG_NOSIGNAL | MSG_DONTWAIT) != static_cast<ssize_t>(ok.size())) {
    bump(host_failed_);
    kill(c);
    return;
  }
  bump(host_ok_);
  update_interest(c);
}

void Muxer::on_guest_shutdown(Connection& c, uint32_t flags) {
  if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV) {
    c.guest_shut_rcv = true;
    c.shut_host_read();  // the host's writes fail now rather than block forever
  }
  if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND) {
    c.guest_shut_send = true;
    if (!c.has_buffered()) c.shut_host_write();  // else once flushed
  }
  if (c.both_shut()) {
    finish_if_done(c);  // queues the RST; `c` lives until it is sent
    if (c.state() == Connection::State::kClosed) return;
  }
  update_linger(c);
  update_interest(c);
}

void Muxer::on_guest_rw(Connection& c, const TxPacket& p) {
  const uint32_t len = p.hdr.len;
  if (c.guest_shut_send) {
    refuse(Refusal::kUnexpectedOp);
    kill(c);
    return;
  }
  if (c.would_overrun(len)) {
    refuse(Refusal::kCreditOverrun);
    kill(c);
    return;
  }
  if (len == 0) return;
  const bool was_empty = !c.has_buffered();
  if (!c.send_to_host(guest_->mem(), p.payload, len)) {
    kill(c);
    return;
  }
  if (was_empty && c.has_buffered()) c.host_progress = Clock::now();
  bump(bytes_to_host_, len);
  if (c.credit_update_due()) queue_control(c, Connection::kPendCreditUpdate);
  update_interest(c);
}

// --- Ending streams ------------------------------------------------------------------

void Muxer::kill(Connection& c) {
  if (c.state() == Connection::State::kClosed) return;  // RST already pending
  if (c.pending & Connection::kPendRequest) {
    free_connection(c.key());  // the guest never heard of it
    return;
  }
  c.close_host();
  queue_control(c, Connection::kPendRst);
}

void Muxer::finish_if_done(Connection& c) {
  if (!c.both_shut() || c.has_buffered() || c.state() == Connection::State::kClosed) return;
  c.close_host();
  queue_control(c, Connection::kPendRst);
}

// --- RX: host → guest control packets -------------------------------------------

Header Muxer::header_for(Connection& c, uint16_t op, uint32_t flags) {
  Header h;
  h.src_cid = kHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = c.key().host_port;
  h.dst_port = c.key().guest_port;
  h.type = VIRTIO_VSOCK_TYPE_STREAM;
  h.op = op;
  h.flags = flags;
  c.fill_credit(h);
  return h;
}

void Muxer::queue_control(Connection& c, uint8_t pending) {
  c.pending |= pending;
  if (c.in_ctl_queue) return;
  c.in_ctl_queue = true;
  ctl_queue_.push_back(c.key());
}

void Muxer::queue_rst_reply(const Header& to) {
  Header h;
  h.src_cid = kHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = to.dst_port;
  h.dst_port = to.src_port;
  h.type = VIRTIO_VSOCK_TYPE_STREAM;
  h.op = VIRTIO_VSOCK_OP_RST;
  rst_backlog_.push_back(h);  // bounded: process_tx() stops at max_rst_backlog
}

Muxer::Flush Muxer::flush_control(Connection& c) {
  static constexpr std::pair<uint8_t, uint16_t> kOrder[] = {
      {Connection::kPendRequest, VIRTIO_VSOCK_OP_REQUEST},
      {Connection::kPendResponse, VIRTIO_VSOCK_OP_RESPONSE},
      {Connection::kPendCreditUpdate, VIRTIO_VSOCK_OP_CREDIT_UPDATE},
      {Connection::kPendShutdown, VIRTIO_VSOCK_OP_SHUTDOWN},
      {Connection::kPendRst, VIRTIO_VSOCK_OP_RST},
  };
  for (const auto& [bit, op] : kOrder) {
    if (!(c.pending & bit)) continue;
    const Header h = header_for(c, op, bit == Connection::kPendShutdown ? c.shutdown_flags : 0);
    if (!guest_->send_control(h)) return Flush::kNoBuffers;
    c.pending = static_cast<uint8_t>(c.pending & ~bit);
    c.credit_advertised(h);
    if (bit == Connection::kPendCreditUpdate) bump(credit_updates_);
    if (bit == Connection::kPendRst) {
      bump(rst_sent_);
      free_connection(c.key());
      return Flush::kFreed;
    }
  }
  return Flush::kDone;
}

void Muxer::pump_rx() {
  if (!active()) return;
  bool out_of_buffers = false;
  while (!rst_backlog_.empty()) {
    if (!guest_->send_control(rst_backlog_.front())) {
      out_of_buffers = true;
      break;
    }
    rst_backlog_.pop_front();
    bump(rst_sent_);
  }
  while (!out_of_buffers && !ctl_queue_.empty()) {
    const ConnKey key = ctl_queue_.front();
    ctl_queue_.pop_front();
    Connection* c = find(key);
    if (!c) continue;
    c->in_ctl_queue = false;
    if (flush_control(*c) == Flush::kNoBuffers) {
      ctl_queue_.push_front(key);
      c->in_ctl_queue = true;
      out_of_buffers = true;
    }
  }
  // Streams that ran out of RX buffers read their host sockets again.
  if (!out_of_buffers && !rx_waiters_.empty() && guest_->rx_available()) {
    const auto waiters = std::move(rx_waiters_);
    rx_waiters_.clear();
    for (const auto& key : waiters) {
      if (Connection* c = find(key); c && c->blocked_on_buffers) {
        c->blocked_on_buffers = false;
        update_interest(*c);
      }
    }
  }
  if (tx_stalled_ && rst_backlog_.size() < limits_.max_rst_backlog) {
    tx_stalled_ = false;
    self_kick();  // the device thread resumes TX
  }
  if (tx_buffer_full_ && buffered_to_host_ < limits_.max_buffered_to_host) {
    tx_buffer_full_ = false;
    tx_full_since_.reset();
    self_kick();
  }
}

}  // namespace ksbox::devices::vsock
