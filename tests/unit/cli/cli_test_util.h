// Small helpers shared by the CLI tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "vmm/unique_fd.h"

namespace ksbox::cli::testing {

inline std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct Pty {
  UniqueFd master, slave;
};

inline Pty open_pty(uint16_t rows = 0, uint16_t cols = 0) {
  Pty p;
  p.master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.master || ::grantpt(p.master.get()) != 0 || ::unlockpt(p.master.get()) != 0)
    throw std::runtime_error("posix_openpt");
  p.slave = UniqueFd(::open(::ptsname(p.master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.slave) throw std::runtime_error("open pty slave");
  if (rows) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    ::ioctl(p.master.get(), TIOCSWINSZ, &ws);
  }
  return p;
}

inline termios term_attrs(int fd) {
  termios t{};
  if (::tcgetattr(fd, &t) != 0) throw std::runtime_error("tcgetattr");
  return t;
}

inline bool same_attrs(const termios& a, const termios& b) {
  return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag && a.c_lflag == b.c_lflag &&
         std::equal(std::begin(a.c_cc), std::end(a.c_cc), std::begin(b.c_cc));
}

inline bool is_raw(const termios& t) {
  return !(t.c_lflag & (ICANON | ECHO | ISIG | IEXTEN)) && !(t.c_iflag & (ICRNL | IXON)) && !(t.c_oflag & OPOST);
}

// Reads from fd until `needle` has been seen or the timeout passes.
inline std::string read_until(int fd, const std::string& needle,
                              std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// A process's resident set size in KiB (0 if unknown).
inline long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:") {
      long v = 0;
      f >> v;
      return v;
    }
  }
  return 0;
}

}  // namespace ksbox::cli::testing
