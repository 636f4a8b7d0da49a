// A PTY session driven through tmux, as a person at a terminal would.
#pragma once

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "tests/e2e/process.h"

namespace ksbox::test {

class Tmux {
 public:
  // The server's socket goes in `dir` (not on the nested harness's 9p root).
  explicit Tmux(const std::string& dir) : socket_(dir + "/tmux.sock") {}
  ~Tmux() { run({"kill-server"}); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  ProcessResult run(std::vector<std::string> args) const;
  // The visible pane of session "s".
  std::string screen() const;
  bool wait_for_screen(const std::regex& re, std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  void type(const std::string& keys) const { run({"send-keys", "-t", "s", "-l", keys}); }
  void enter() const { run({"send-keys", "-t", "s", "Enter"}); }

 private:
  std::string socket_;
};

}  // namespace ksbox::test
