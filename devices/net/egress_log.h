// The egress log of `--network filtered`: one JSON object a line for every
// allowed and denied attempt (EgressPolicy::json plus "time"), appended to
// a file the host reads (`ksbox logs --egress`).
//
// The guest decides how many attempts there are, so the log is bounded
// twice: a token bucket on lines (a burst, then a steady rate; what it holds
// back is counted and reported as one {"kind":"suppressed","count":N} line
// once tokens are back), and a size cap past which the file is renamed to
// PATH.1 (replacing the previous one) and started afresh, so the log never
// takes more than twice the cap. Write errors (a full disk) are counted,
// never thrown: the guest's traffic does not depend on the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "devices/net/egress_policy.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::net {

struct EgressLogLimits {
  uint32_t burst = 200;             // lines written back to back, at most
  double lines_per_second = 20;     // the steady rate after a burst
  uint64_t max_bytes = 32u << 20;   // then PATH becomes PATH.1
};

class EgressLog {
 public:
  // Monotonic time, for the token bucket (tests pass their own).
  using Clock = std::function<std::chrono::nanoseconds()>;
  static std::chrono::nanoseconds steady_now();

  // Opens (creates) `path` for appending; throws Error with the path when it cannot.
  EgressLog(std::string path, EgressLogLimits limits = {}, Clock clock = steady_now);
  // Writes a pending "suppressed" count, token or not: the last word.
  ~EgressLog();
  EgressLog(const EgressLog&) = delete;
  EgressLog& operator=(const EgressLog&) = delete;

  // One line for `e`, or one more suppressed event.
  void record(const EgressEvent& e);
  // Writes the pending "suppressed" line if the bucket allows; the filter
  // calls it now and then so that a count is not held back forever.
  void flush_suppressed();
  bool has_suppressed() const { return pending_suppressed_ > 0; }

  uint64_t lines_written() const { return lines_; }
  uint64_t suppressed_total() const { return suppressed_total_; }
  uint64_t write_errors() const { return write_errors_; }

 private:
  bool take_token();
  void write_suppressed();
  void write_line(std::string line);
  void open_file();

  const std::string path_;
  const EgressLogLimits limits_;
  const Clock clock_;
  UniqueFd fd_;
  uint64_t bytes_ = 0;  // in the current file
  double tokens_;
  std::chrono::nanoseconds refilled_at_;
  uint64_t pending_suppressed_ = 0, suppressed_total_ = 0, lines_ = 0, write_errors_ = 0;
};

}  // namespace ksbox::devices::net
