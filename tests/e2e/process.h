// Runs a child process with captured stdout/stderr and a deadline; the
// end-to-end tests drive ksbox-vmm with it.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ksbox::test {

struct ProcessResult {
  int exit_code = -1;   // 128+N when killed by signal N
  bool timed_out = false;
  std::string out, err;
};

struct ProcessOptions {
  std::chrono::seconds timeout{180};
  // Called with the stdout gathered so far after each read; returning true
  // sends `signal` to the child once (e.g. SIGTERM when a marker appears).
  std::function<bool(const std::string&)> send_signal_when;
  int signal = 15;
  std::string stdin_file = "/dev/null";  // the child's stdin
};

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& opts = {});

// A whole (host) file, binary; "" when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace ksbox::test
