#include "tests/e2e/tmux.h"

#include <thread>

namespace ksbox::test {

ProcessResult Tmux::run(std::vector<std::string> args) const {
  args.insert(args.begin(), {"/usr/bin/tmux", "-S", socket_, "-f", "/dev/null"});
  return run_process(args);
}

std::string Tmux::screen() const { return run({"capture-pane", "-p", "-t", "s"}).out; }

bool Tmux::wait_for_screen(const std::regex& re, std::chrono::seconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::regex_search(screen(), re)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

}  // namespace ksbox::test
