#include "devices/net/filtered_backend.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "vmm/error.h"

namespace ksbox::devices::net {
namespace {

constexpr uint16_t kDnsPort = 53;
constexpr int kLogFlushMs = 1000;  // how soon a held-back "suppressed" count is retried
constexpr size_t kUdpIpHeaders = 28;

}  // namespace

FilteredBackend::FilteredBackend(FilterOptions opts, std::unique_ptr<NetBackend> inner)
    : max_answer_(opts.mtu > kUdpIpHeaders ? opts.mtu - kUdpIpHeaders : 0),
      inner_(std::move(inner)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      policy_(std::move(opts.rules)),
      forwarder_(std::move(opts.dns_upstream), max_answer_) {
  if (!wake_fd_) throw_errno("eventfd");
  if (!opts.egress_log.empty()) log_ = std::make_unique<EgressLog>(opts.egress_log, opts.log_limits);
}

FilteredBackend::~FilteredBackend() {
  inner_.reset();  // no more frames from the network
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
}

void FilteredBackend::start(FrameSink& sink) {
  sink_ = &sink;
  thread_ = std::thread([this] { loop(); });
  inner_->start(*this);
}

bool FilteredBackend::can_send() { return inner_->can_send(); }

void FilteredBackend::send_frame(std::span<const uint8_t> frame) {
  bool wake_thread = false, pass;
  {
    std::lock_guard lock(mu_);
    pass = decide(frame, wake_thread);
  }
  if (wake_thread) wake();
  if (pass) inner_->send_frame(frame);
}

bool FilteredBackend::decide(std::span<const uint8_t> frame, bool& wake) {
  const auto l4 = parse_l4(frame);
  if (l4 && l4->protocol == kIpProtoUdp && l4->dport == kDnsPort && l4->dst == policy_.dns_server()) {
    decide_dns(frame, *l4, wake);
    return false;
  }
  const auto out = policy_.check_outbound(frame);
  log(out.event);
  if (out.verdict == EgressPolicy::Verdict::kPass) {
    ++stats_.passed;
    return true;
  }
  ++stats_.dropped;
  if (l4 && l4->protocol == kIpProtoTcp && (l4->tcp_flags & kTcpSyn) && !(l4->tcp_flags & (kTcpAck | kTcpRst))) {
    ++stats_.resets;
    queue({tcp_reset_to_guest(flow_ends(frame, *l4), *l4), std::nullopt, {}}, wake);
  }
  return false;
}

// The resolver is the filter itself: nothing sent to it reaches slirp.
void FilteredBackend::decide_dns(std::span<const uint8_t> frame, const L4View& l4, bool& wake) {
  const auto out = policy_.check_outbound(frame);
  log(out.event);
  const auto q = parse_dns(l4.payload);
  const auto ends = flow_ends(frame, l4);
  if (out.verdict == EgressPolicy::Verdict::kPass && q) {
    queue({{l4.payload.begin(), l4.payload.end()}, q, ends}, wake);
    return;
  }
  ++stats_.dropped;
  if (q && !q->response && q->opcode == 0) {  // a well-formed query for a name off the list
    ++stats_.nxdomain;
    queue({udp_to_guest(ends, dns_nxdomain(l4.payload, *q)), std::nullopt, {}}, wake);
  }
}

void FilteredBackend::queue(Work w, bool& wake) {
  if (work_.size() >= kMaxQueuedWork) {
    ++stats_.work_dropped;
    return;
  }
  wake = wake || work_.empty();
  work_.push_back(std::move(w));
}

void FilteredBackend::log(const std::optional<EgressEvent>& e) {
  if (e && log_) log_->record(*e);
}

void FilteredBackend::receive_frame(std::span<const uint8_t> frame) {
  {
    std::lock_guard lock(mu_);
    policy_.observe_inbound(frame);
  }
  sink_->receive_frame(frame);
}

void FilteredBackend::backend_writable() { sink_->backend_writable(); }

std::vector<std::pair<std::string, uint64_t>> FilteredBackend::counters() const {
  const FilterStats s = stats();
  std::vector<std::pair<std::string, uint64_t>> out = {
      {"filter_passed", s.passed},         {"filter_dropped", s.dropped},
      {"filter_nxdomain", s.nxdomain},     {"filter_resets", s.resets},
      {"dns_forwarded", s.dns_forwarded},  {"dns_answered", s.dns_answered},
      {"dns_forward_failed", s.dns_forward_failed}, {"filter_work_dropped", s.work_dropped}};
  for (auto& c : inner_->counters()) out.push_back(std::move(c));
  return out;
}

FilterStats FilteredBackend::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void FilteredBackend::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void FilteredBackend::deliver_answer(const FlowEnds& ends, std::span<const uint8_t> answer) {
  const auto frame = udp_to_guest(ends, answer);
  {
    std::lock_guard lock(mu_);
    policy_.observe_inbound(frame);
    ++stats_.dns_answered;
  }
  sink_->receive_frame(frame);
}

void FilteredBackend::loop() {
  for (;;) {
    bool flush_log;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      batch_.swap(work_);
      if (log_) log_->flush_suppressed();
      flush_log = log_ && log_->has_suppressed();
    }
    for (auto& w : batch_) {
      if (!w.query) {
        sink_->receive_frame(w.bytes);
        continue;
      }
      const bool sent = forwarder_.forward(w.bytes, *w.query, w.ends, DnsForwarder::Clock::now());
      std::lock_guard lock(mu_);
      ++(sent ? stats_.dns_forwarded : stats_.dns_forward_failed);
    }
    batch_.clear();

    pollfds_.assign({{wake_fd_.get(), POLLIN, 0}});
    forwarder_.add_pollfds(pollfds_);
    int timeout = forwarder_.next_timeout_ms(DnsForwarder::Clock::now());
    if (flush_log) timeout = timeout < 0 ? kLogFlushMs : std::min(timeout, kLogFlushMs);
    ::poll(pollfds_.data(), pollfds_.size(), timeout);  // on EINTR (or worse) the next round polls again
    if (pollfds_[0].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] auto r = ::read(wake_fd_.get(), &v, sizeof v);
    }
    forwarder_.collect(DnsForwarder::Clock::now(),
                       [this](const FlowEnds& ends, std::span<const uint8_t> answer) { deliver_answer(ends, answer); });
  }
}

}  // namespace ksbox::devices::net
