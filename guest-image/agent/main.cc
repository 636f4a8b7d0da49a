// ksbox-agent: the guest agent. Serves the exec protocol
// (protocol/exec_protocol.h) over vsock, and as PID 1 is the guest's init.
//
//   ksbox-agent [--listen vsock:PORT | --listen unix:PATH] [--pid1]
//               [--handshake-timeout SECONDS]
//
// Options are parsed by hand: CLI11 would bring iostreams into this static
// binary, which ships in every initramfs.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "listener.h"
#include "log.h"
#include "pid1.h"
#include "server.h"

namespace {

using namespace ksbox::agent;

constexpr std::string_view kUsage =
    "usage: ksbox-agent [--listen vsock:PORT | --listen unix:PATH] [--pid1] [--handshake-timeout SECONDS]\n"
    "  --listen             where to serve the exec protocol (default vsock:1024; unix:@NAME is abstract)\n"
    "  --pid1               act as init (also automatic when running as PID 1)\n"
    "  --handshake-timeout  seconds from connect to request before a connection is dropped (default 10)\n";

struct Options {
  ServerOptions server;
  bool help = false;
};

// nullopt + a message on stderr for bad arguments.
std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  o.server.listen = *parse_listen_address("vsock:1024");
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--pid1" && !has_value) {
      o.server.pid1 = true;
    } else if (arg == "--listen") {
      std::optional<ListenAddress> a;
      if (take_value()) a = parse_listen_address(value);
      if (!a) {
        log("bad --listen '{}': want vsock:PORT or unix:PATH", value);
        return std::nullopt;
      }
      o.server.listen = *a;
    } else if (arg == "--handshake-timeout") {
      double secs = 0;
      bool ok = take_value();
      if (ok) {
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
        ok = ec == std::errc() && p == value.data() + value.size() && secs > 0 && secs < 86400;
      }
      if (!ok) {
        log("bad --handshake-timeout '{}': want seconds > 0", value);
        return std::nullopt;
      }
      o.server.limits.handshake_timeout = std::chrono::milliseconds(static_cast<long>(secs * 1000));
    } else {
      log("unknown argument '{}'", arg);
      return std::nullopt;
    }
  }
  return o;
}

// More descriptors than the default 1024: each session uses up to five.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::vector<char*> g_argv;

// As PID 1 an uncaught exception must not end the process (the kernel would
// panic): start over in place. Same pid, so our children stay ours.
[[noreturn]] void restart_in_place() {
  log("fatal error; restarting");
  ::execv("/proc/self/exe", g_argv.data());
  ::execv("/sbin/ksbox-agent", g_argv.data());
  for (;;) {  // cannot even do that: at least keep reaping
    reap_all();
    ::sleep(1);
  }
}

// The same for a crash: the kernel would panic on PID 1 dying of SIGSEGV.
// Async-signal-safe only. SA_NODEFER: the signal must not stay blocked in
// the new image, where a blocked SIGSEGV would kill outright.
void on_fatal_signal(int) {
  static constexpr char kMsg[] = "ksbox-agent: fatal signal; restarting\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  ::execv("/proc/self/exe", g_argv.data());
  ::execv("/sbin/ksbox-agent", g_argv.data());
  ::_exit(1);
}

void survive_crashes() {
  std::set_terminate(restart_in_place);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sa.sa_flags = SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::sigaction(sig, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  g_argv.assign(argv, argv + argc);
  g_argv.push_back(nullptr);
  const bool is_init = ::getpid() == 1;
  ensure_stdio(is_init);

  auto opts = parse_args(argc, argv);
  if (opts && opts->help) {
    [[maybe_unused]] const ssize_t n = ::write(STDOUT_FILENO, kUsage.data(), kUsage.size());
    return 0;
  }
  if (!opts) {
    if (!is_init) {
      [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kUsage.data(), kUsage.size());
      return 2;
    }
    log("bad arguments; serving with the defaults");  // init must not exit
    opts = parse_args(1, argv);
  }
  ServerOptions& so = opts->server;
  so.pid1 = so.pid1 || is_init;
  if (so.pid1) {
    survive_crashes();
    setup_pid1();
  }
  raise_fd_limit();

  for (;;) {
    try {
      Server server(so);
      log("ready on {}", so.listen.describe());
      server.run();
      if (!so.pid1) return 0;
    } catch (const std::exception& e) {
      log("{}", e.what());
      if (!so.pid1) return 1;
    }
    // PID 1 never exits: keep reaping orphans, then try again (the vsock
    // device may show up late, or a transient error may pass).
    log("retrying in 5 s");
    for (int i = 0; i < 50; ++i) {
      reap_all();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}
