#include "devices/net/dns_forwarder.h"

#include <arpa/inet.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "vmm/error.h"
#include "vmm/network_config.h"

namespace ksbox::devices::net {
namespace {

constexpr uint16_t kDnsPort = 53;

}  // namespace

DnsUpstream parse_dns_upstream(std::string_view arg) {
  DnsUpstream u;
  u.text = std::string(arg);
  const std::string context = fmt::format("--dns-upstream '{}'", arg);
  std::string host(arg);
  uint16_t port = kDnsPort;
  if (arg.starts_with('[')) {  // [IPV6]:PORT
    const size_t close = arg.find(']');
    if (close == std::string_view::npos || (close + 1 < arg.size() && arg[close + 1] != ':'))
      throw Error(fmt::format("--dns-upstream '{}': expected [IPV6]:PORT", arg));
    host = std::string(arg.substr(1, close - 1));
    if (close + 1 < arg.size()) port = parse_port(context, arg.substr(close + 2));
  } else if (std::count(arg.begin(), arg.end(), ':') == 1) {  // IPV4:PORT
    const size_t colon = arg.find(':');
    host = std::string(arg.substr(0, colon));
    port = parse_port(context, arg.substr(colon + 1));
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&u.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&u.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    u.len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    u.len = sizeof *v6;
  } else {
    throw Error(fmt::format("--dns-upstream '{}': '{}' is not an IP address", arg, host));
  }
  return u;
}

DnsUpstream system_dns_upstream() {
  struct __res_state rs {};
  if (::res_ninit(&rs) != 0) throw Error("cannot read /etc/resolv.conf; give the resolver with --dns-upstream");
  DnsUpstream u;
  for (int i = 0; i < rs.nscount && u.len == 0; ++i) {
    if (rs.nsaddr_list[i].sin_family == AF_INET) {
      std::memcpy(&u.addr, &rs.nsaddr_list[i], sizeof(sockaddr_in));
      u.len = sizeof(sockaddr_in);
    } else if (rs._u._ext.nsaddrs[i] && rs._u._ext.nsaddrs[i]->sin6_family == AF_INET6) {
      std::memcpy(&u.addr, rs._u._ext.nsaddrs[i], sizeof(sockaddr_in6));
      u.len = sizeof(sockaddr_in6);
    }
  }
  ::res_nclose(&rs);
  if (u.len == 0) throw Error("/etc/resolv.conf names no usable nameserver; give one with --dns-upstream");
  char buf[INET6_ADDRSTRLEN] = {};
  const auto* sa = reinterpret_cast<const sockaddr*>(&u.addr);
  ::inet_ntop(sa->sa_family,
              sa->sa_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&u.addr)->sin_addr)
                                       : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&u.addr)->sin6_addr),
              buf, sizeof buf);
  u.text = buf;
  return u;
}

DnsForwarder::DnsForwarder(DnsUpstream upstream, size_t max_answer)
    : upstream_(std::move(upstream)), max_answer_(max_answer), buf_(65536) {}

bool DnsForwarder::forward(std::span<const uint8_t> query, const DnsMessage& q, const FlowEnds& ends,
                           Clock::time_point now) {
  if (pending_.size() >= kMaxPending) return false;
  UniqueFd fd(::socket(upstream_.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&upstream_.addr), upstream_.len) != 0 ||
      ::send(fd.get(), query.data(), query.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(query.size()))
    return false;
  pending_.push_back({std::move(fd), q.id, q.qtype, q.qname, ends, now + kTimeout});
  return true;
}

void DnsForwarder::add_pollfds(std::vector<pollfd>& out) const {
  for (const auto& p : pending_) out.push_back({p.fd.get(), POLLIN, 0});
}

void DnsForwarder::collect(Clock::time_point now,
                           const std::function<void(const FlowEnds&, std::span<const uint8_t>)>& deliver) {
  std::erase_if(pending_, [&](Pending& p) {
    for (;;) {
      const ssize_t n = ::recv(p.fd.get(), buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (n < 0) break;  // nothing (more) now; ECONNREFUSED: the deadline ends it
      const auto answer = std::span<const uint8_t>(buf_.data(), static_cast<size_t>(n));
      const auto m = parse_dns(answer);
      if (!m || !m->response || m->id != p.id || m->qname != p.qname || m->qtype != p.qtype ||
          answer.size() > max_answer_) {
        ++mismatched_;
        continue;
      }
      deliver(p.ends, answer);
      return true;
    }
    if (now < p.deadline) return false;
    ++timed_out_;
    return true;
  });
}

int DnsForwarder::next_timeout_ms(Clock::time_point now) const {
  if (pending_.empty()) return -1;
  auto first = pending_.front().deadline;
  for (const auto& p : pending_) first = std::min(first, p.deadline);
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(first - now).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
}

}  // namespace ksbox::devices::net
