// `--network filtered`: a NetBackend in front of another (the slirp
// backend) that lets through only what EgressPolicy allows and logs every
// attempt (EgressLog).
//
// Guest → network: ARP and TCP the policy passes go to the inner backend.
// DNS to the VMM's resolver address never reaches it: allowed queries go to
// the upstream resolver (DnsForwarder), denied names get NXDOMAIN at once.
// A denied TCP SYN gets a RST, so a tool fails fast; anything else denied
// is dropped. Network → guest: every frame, and every upstream answer, goes
// past observe_inbound(), which is how resolved addresses become
// connectable.
//
// Threads: send_frame() comes from the device (which holds its lock, so
// answers cannot go back from there), receive_frame() from the inner
// backend's thread. Answers the filter makes itself (NXDOMAIN, RST, DNS
// answers) go to the device from the filter's own thread. One mutex guards
// the policy, the log and the work queue; it is never held while calling
// the device or the inner backend.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "devices/net/backend.h"
#include "devices/net/dns_forwarder.h"
#include "devices/net/egress_log.h"
#include "devices/net/egress_policy.h"
#include "devices/net/reply_frames.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::net {

struct FilterOptions {
  EgressRules rules;
  DnsUpstream dns_upstream;
  uint16_t mtu = 1500;     // the guest's: DNS answers that do not fit are dropped
  std::string egress_log;  // "" for none
  EgressLogLimits log_limits;
};

struct FilterStats {
  uint64_t passed = 0, dropped = 0;         // guest frames to the inner backend / nowhere
  uint64_t nxdomain = 0, resets = 0;        // refusals sent to the guest
  uint64_t dns_forwarded = 0, dns_answered = 0;
  uint64_t dns_forward_failed = 0;          // too many pending, or the upstream unreachable
  uint64_t work_dropped = 0;                // answers not made: the filter's queue was full
};

class FilteredBackend final : public NetBackend, private FrameSink {
 public:
  static constexpr size_t kMaxQueuedWork = 256;

  // Opens the egress log (throws Error when it cannot).
  FilteredBackend(FilterOptions opts, std::unique_ptr<NetBackend> inner);
  ~FilteredBackend() override;  // stops the inner backend, then the filter's thread

  void start(FrameSink& sink) override;
  bool can_send() override;
  void send_frame(std::span<const uint8_t> frame) override;

  FilterStats stats() const;
  std::vector<std::pair<std::string, uint64_t>> counters() const override;

 private:
  // What the filter's thread does for a guest frame.
  struct Work {
    std::vector<uint8_t> bytes;  // a frame for the guest, or a DNS query to forward
    std::optional<DnsMessage> query;  // set: forward `bytes` upstream
    FlowEnds ends;
  };

  // FrameSink (from the inner backend's thread).
  void receive_frame(std::span<const uint8_t> frame) override;
  void backend_writable() override;

  // Under mu_: decide a frame; true when it goes to the inner backend.
  bool decide(std::span<const uint8_t> frame, bool& wake);
  void decide_dns(std::span<const uint8_t> frame, const L4View& l4, bool& wake);
  void queue(Work w, bool& wake);
  void log(const std::optional<EgressEvent>& e);

  void loop();
  void wake();
  void deliver_answer(const FlowEnds& ends, std::span<const uint8_t> answer);

  const size_t max_answer_;
  std::unique_ptr<NetBackend> inner_;
  FrameSink* sink_ = nullptr;
  UniqueFd wake_fd_;

  mutable std::mutex mu_;  // below, up to the thread-owned part
  EgressPolicy policy_;
  std::unique_ptr<EgressLog> log_;
  std::deque<Work> work_;
  bool stopping_ = false;
  FilterStats stats_;

  // The filter's thread only.
  DnsForwarder forwarder_;
  std::deque<Work> batch_;
  std::vector<pollfd> pollfds_;
  std::thread thread_;
};

}  // namespace ksbox::devices::net
