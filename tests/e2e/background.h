// A child process left running while a test talks to it (a VMM serving
// execs), with its stdout and stderr going to a log file. Killed with SIGKILL
// and reaped on destruction if still running, so no test leaves it behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ksbox::test {

class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Exit code (128+N for signal N) once the process ended within `timeout`.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  bool running();
  void kill(int signo);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace ksbox::test
