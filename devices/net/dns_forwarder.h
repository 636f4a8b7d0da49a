// The resolver behind the VMM's DNS address in `--network filtered`: the
// filter hands it the guest's allowed queries, it sends each to the upstream
// resolver from a socket of its own (connected, so only the upstream's
// datagrams arrive; a fresh random source port each), and gives back the
// answer that matches the query's id, name and type, addressed to the guest
// flow that asked. libslirp's own DNS proxy is off in this mode, so no
// query reaches the network any other way.
//
// Not thread-safe: the filter's thread owns it.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devices/net/dns_message.h"
#include "devices/net/reply_frames.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::net {

struct DnsUpstream {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // as the user gave it, for messages
};

// IPV4[:PORT] or IPV6 or [IPV6]:PORT (port 53 by default); throws Error.
DnsUpstream parse_dns_upstream(std::string_view arg);
// The host's resolver: the first nameserver of /etc/resolv.conf, as
// libresolv reads it (127.0.0.1 when the file names none).
DnsUpstream system_dns_upstream();

class DnsForwarder {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxPending = 64;  // queries waiting for an answer
  static constexpr auto kTimeout = std::chrono::seconds(5);

  // Answers longer than `max_answer` bytes (what fits the guest's MTU) are dropped.
  DnsForwarder(DnsUpstream upstream, size_t max_answer);

  // Sends `query` (whose parse is `q`) upstream; its answer will go to
  // `ends`. False when kMaxPending are waiting or the send failed.
  bool forward(std::span<const uint8_t> query, const DnsMessage& q, const FlowEnds& ends, Clock::time_point now);

  // One POLLIN entry per waiting query.
  void add_pollfds(std::vector<pollfd>& out) const;
  // Reads what arrived; calls `deliver` for each matching answer and drops
  // queries past their deadline.
  void collect(Clock::time_point now, const std::function<void(const FlowEnds&, std::span<const uint8_t>)>& deliver);
  // Milliseconds until the next deadline, -1 when nothing waits.
  int next_timeout_ms(Clock::time_point now) const;

  size_t pending() const { return pending_.size(); }
  uint64_t mismatched() const { return mismatched_; }  // datagrams that answered nothing we asked
  uint64_t timed_out() const { return timed_out_; }

 private:
  struct Pending {
    UniqueFd fd;
    uint16_t id, qtype;
    std::string qname;
    FlowEnds ends;
    Clock::time_point deadline;
  };

  const DnsUpstream upstream_;
  const size_t max_answer_;
  std::vector<Pending> pending_;
  std::vector<uint8_t> buf_;
  uint64_t mismatched_ = 0, timed_out_ = 0;
};

}  // namespace ksbox::devices::net
