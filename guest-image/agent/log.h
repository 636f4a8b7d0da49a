// Agent logging: one line per call on stderr, which is the console when the
// agent runs as PID 1. Each line goes out in a single write() so concurrent
// writers (children inheriting the console) do not interleave mid-line.
#pragma once

#include <unistd.h>

#include <string>

#include <fmt/format.h>

namespace ksbox::agent {

template <typename... Args>
void log(fmt::format_string<Args...> f, Args&&... args) {
  std::string line = "ksbox-agent: ";
  fmt::format_to(std::back_inserter(line), f, std::forward<Args>(args)...);
  line.push_back('\n');
  // Best effort: a log line that cannot be written is not worth failing for.
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace ksbox::agent
