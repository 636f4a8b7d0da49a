#include "devices/net/egress_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vmm/error.h"

namespace ksbox::devices::net {
namespace {

// RFC 3339, UTC, milliseconds: 2026-11-30T01:50:00.123Z.
std::string utc_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  ::gmtime_r(&ts.tv_sec, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

}  // namespace

std::chrono::nanoseconds EgressLog::steady_now() { return std::chrono::steady_clock::now().time_since_epoch(); }

EgressLog::EgressLog(std::string path, EgressLogLimits limits, Clock clock)
    : path_(std::move(path)), limits_(limits), clock_(std::move(clock)), tokens_(limits.burst),
      refilled_at_(clock_()) {
  open_file();
}

void EgressLog::open_file() {
  UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) throw_errno("--egress-log " + path_);
  struct stat st{};
  bytes_ = ::fstat(fd.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  fd_ = std::move(fd);
}

bool EgressLog::take_token() {
  const auto now = clock_();
  const double elapsed = std::chrono::duration<double>(now - refilled_at_).count();
  refilled_at_ = now;
  tokens_ = std::min<double>(limits_.burst, tokens_ + std::max(0.0, elapsed) * limits_.lines_per_second);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void EgressLog::record(const EgressEvent& e) {
  flush_suppressed();
  if (pending_suppressed_ > 0 || !take_token()) {
    ++pending_suppressed_;
    ++suppressed_total_;
    return;
  }
  nlohmann::json j = {{"time", utc_now()}};
  j.update(EgressPolicy::json(e));
  write_line(j.dump());
}

EgressLog::~EgressLog() {
  if (pending_suppressed_ > 0) write_suppressed();
}

void EgressLog::flush_suppressed() {
  if (pending_suppressed_ > 0 && take_token()) write_suppressed();
}

void EgressLog::write_suppressed() {
  const nlohmann::json j = {{"time", utc_now()}, {"kind", "suppressed"}, {"count", pending_suppressed_}};
  pending_suppressed_ = 0;
  write_line(j.dump());
}

void EgressLog::write_line(std::string line) {
  line.push_back('\n');
  if (bytes_ > 0 && bytes_ + line.size() > limits_.max_bytes) {
    const std::string old = path_ + ".1";
    if (::rename(path_.c_str(), old.c_str()) != 0) ++write_errors_;
    try {
      open_file();
    } catch (const Error&) {
      ++write_errors_;
      return;
    }
  }
  const ssize_t n = ::write(fd_.get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    ++write_errors_;
    return;
  }
  bytes_ += line.size();
  ++lines_;
}

}  // namespace ksbox::devices::net
