#include "cli/vmm_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "cli/stop.h"
#include "cli/vsock_connect.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Whether the process behind `pidfd` ended within `timeout`.
bool wait_exit(int pidfd, std::chrono::milliseconds timeout) {
  pollfd p{pidfd, POLLIN, 0};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) throw_errno("poll pidfd");
  }
}

}  // namespace

std::optional<PidRecord> live_process(const fs::path& pid_file) {
  const auto rec = read_pid_file(pid_file);
  if (!rec || process_starttime(rec->pid) != rec->starttime) return std::nullopt;
  return rec;
}

UniqueFd open_pidfd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

std::string_view to_string(SandboxState s) {
  switch (s) {
    case SandboxState::kStopped: return "stopped";
    case SandboxState::kStarting: return "starting";
    case SandboxState::kRunning: return "running";
    case SandboxState::kCrashed: return "crashed";
  }
  return "unknown";
}

std::optional<json> control_request(const fs::path& socket, std::string_view cmd,
                                    std::chrono::milliseconds timeout) {
  return control_call(socket, json{{"cmd", cmd}}, timeout);
}

std::optional<json> control_call(const fs::path& socket, const json& request, std::chrono::milliseconds timeout) {
  UnixConnectResult c = unix_connect(socket);
  if (c.error == EINPROGRESS || c.error == EAGAIN) c.error = 0;  // completes below
  if (!c.fd || c.error) return std::nullopt;
  const int fd = c.fd.get();
  const auto deadline = Clock::now() + timeout;
  const std::string req = request.dump() + "\n";
  std::string reply;
  size_t sent = 0;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pf{fd, static_cast<short>(sent < req.size() ? POLLOUT : POLLIN), 0};
    if (::poll(&pf, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return std::nullopt;
    if (sent < req.size()) {
      const ssize_t n = ::write(fd, req.data() + sent, req.size() - sent);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) return std::nullopt;
      sent += static_cast<size_t>(n);
      continue;
    }
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return std::nullopt;
    if (n == 0 || reply.size() > 65536) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  json j = json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

SandboxProbe probe_sandbox(const SandboxPaths& p) {
  SandboxProbe probe;
  if (auto lock = try_lock(p)) {
    // Nobody holds the lock: no VMM. A pid file left behind means it died.
    std::error_code ec;
    probe.state = fs::exists(p.pid_file(), ec) ? SandboxState::kCrashed : SandboxState::kStopped;
    return probe;
  }
  probe.vmm = live_process(p.pid_file());
  if (!probe.vmm) {
    probe.state = SandboxState::kStarting;  // a CLI is setting it up, or the VMM is just starting
    return probe;
  }
  probe.status = control_request(p.control(), "status");
  const bool confirmed = probe.status && (*probe.status)["pid"] == probe.vmm->pid;
  probe.state = confirmed ? SandboxState::kRunning : SandboxState::kStarting;
  return probe;
}

int with_guest_paused(const SandboxPaths& p, const std::function<int()>& fn) {
  if (!live_process(p.pid_file())) return fn();
  // Long enough for a large sync; renewed by nobody, ended by resume.
  const auto paused = control_call(p.control(), json{{"cmd", "pause"}, {"lease_ms", 120'000}});
  if (!paused || !(*paused)["ok"].get<bool>())
    throw Error("cannot pause the guest while its files are read: " +
                (paused ? paused->value("error", std::string("refused")) : std::string("no answer")));
  struct Resume {
    const SandboxPaths& p;
    ~Resume() { control_request(p.control(), "resume"); }
  } resume{p};
  return fn();
}

void remove_stale_runtime(const SandboxPaths& p) {
  std::error_code ec;
  fs::remove(p.pid_file(), ec);
  const auto remove_socket = [&](const fs::path& path) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  };
  remove_socket(p.control());
  remove_socket(p.vsock());
  const std::string prefix = p.vsock().filename().string() + "_";
  for (const auto& e : fs::directory_iterator(p.dir, ec))
    if (e.path().filename().string().starts_with(prefix)) remove_socket(e.path());
}

pid_t spawn_vmm(const SandboxPaths& p, const VmmLaunch& launch, const UniqueFd& lock) {
  fs::create_directories(p.logs());
  UniqueFd log(::open(p.vmm_log().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!log) throw_errno("cannot open " + p.vmm_log().string());
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) throw_errno("/dev/null");
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) throw_errno("pipe");
  UniqueFd err_read(pipefd[0]), err_write(pipefd[1]);

  std::vector<std::string> args{launch.vmm.string()};
  args.insert(args.end(), launch.args.begin(), launch.args.end());
  args.push_back("--lock-fd");
  args.push_back(std::to_string(lock.get()));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(s, SIG_DFL);
    ::setsid();
    ::dup2(devnull.get(), 0);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    ::fcntl(lock.get(), F_SETFD, 0);  // inherited: the VMM holds the lock from now on
    ::execv(argv[0], argv.data());
    const int e = errno;
    [[maybe_unused]] auto n = ::write(err_write.get(), &e, sizeof e);
    ::_exit(127);
  }
  err_write.reset();
  int child_errno = 0;
  if (::read(err_read.get(), &child_errno, sizeof child_errno) == static_cast<ssize_t>(sizeof child_errno)) {
    ::waitpid(pid, nullptr, 0);
    throw Error(fmt::format("cannot run {}: {}", launch.vmm.string(), std::strerror(child_errno)));
  }
  return pid;
}

std::string log_tail(const fs::path& file, size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(std::move(line));
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "  " + l + "\n";
  return out;
}

void wait_until_ready(const SandboxPaths& p, pid_t vmm, std::chrono::milliseconds timeout) {
  UniqueFd pidfd = open_pidfd(vmm);
  ConnectPolicy policy;
  policy.timeout = timeout;
  policy.retry_unreachable_socket = true;
  policy.cancel_fd = pidfd ? pidfd.get() : -1;
  try {
    vsock_connect({p.vsock().string(), kAgentPort}, policy);
  } catch (const ConnectError& e) {
    int status = 0;
    const bool exited = ::waitpid(vmm, &status, WNOHANG) == vmm;
    const std::string why =
        e.reason() == ConnectError::Reason::kCancelled || exited
            ? (exited && WIFEXITED(status) ? fmt::format("ksbox-vmm exited with status {} while the guest booted",
                                                         WEXITSTATUS(status))
                                           : std::string("ksbox-vmm ended while the guest booted"))
            : fmt::format("the guest agent did not answer: {}", e.what());
    throw Error(fmt::format("{}\n{}:\n{}{}:\n{}", why, p.vmm_log().string(), log_tail(p.vmm_log(), 5),
                            p.console_log().string(), log_tail(p.console_log(), 15)));
  }
}

std::string stop_sandbox(const SandboxPaths& p, std::chrono::milliseconds grace) {
  const auto vmm = live_process(p.pid_file());
  if (!vmm) throw Error("no VMM runs for this sandbox");
  UniqueFd pidfd = open_pidfd(vmm->pid);
  if (!pidfd) throw_errno("pidfd_open");
  std::string how = "powered off";
  try {
    stop_vm({{p.vsock().string(), kAgentPort}, grace});
  } catch (const Error&) {
    how = "stopped";  // the agent did not answer: power off from outside
    control_request(p.control(), "stop");
  }
  if (!wait_exit(pidfd.get(), std::chrono::seconds(5))) {
    how = "killed";
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    if (!wait_exit(pidfd.get(), std::chrono::seconds(10)))
      throw Error(fmt::format("ksbox-vmm (pid {}) did not die of SIGKILL", vmm->pid));
  }
  ::waitpid(vmm->pid, nullptr, WNOHANG);  // reap it if it is our child
  // Its lock went with it; the files it left are ours to remove.
  for (int i = 0; i < 100; ++i) {
    if (auto lock = try_lock(p)) {
      remove_stale_runtime(p);
      return how;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return how;
}

}  // namespace ksbox::cli
