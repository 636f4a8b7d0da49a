#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

extern char** environ;

namespace ksbox::agent {
namespace {

// What the child writes to the status pipe when it gives up before exec.
enum class Stage : int32_t { kSetup = 1, kIds = 2, kChdir = 3, kExec = 4 };
struct ExecReport {
  Stage stage;
  int32_t err;
};

// Everything the child needs, prepared before fork so that the child only
// makes system calls (no allocation between fork and exec).
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<const char*> cwds;
  const ExecIdentity* identity = nullptr;
  int stdin_fd = -1;  // child ends, or the PTY slave
  int stdout_fd = -1;
  int stderr_fd = -1;
  bool pty = false;
  int status_fd = -1;
};

[[noreturn]] void child_fail(int status_fd, Stage stage) {
  const ExecReport report{stage, errno};
  // 8 bytes < PIPE_BUF: atomic; nothing useful to do if it fails.
  [[maybe_unused]] const ssize_t n = ::write(status_fd, &report, sizeof report);
  ::_exit(127);
}

[[noreturn]] void run_child(const ChildPlan& p) {
  // The agent blocks SIGCHLD (signalfd) and ignores SIGPIPE; both would be
  // inherited across exec.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);

  if (::setsid() < 0) child_fail(p.status_fd, Stage::kSetup);
  if (p.pty && ::ioctl(p.stdin_fd, TIOCSCTTY, 0) < 0) child_fail(p.status_fd, Stage::kSetup);
  // All sources are >= 3 (the agent keeps 0..2 open), and dup2 clears
  // close-on-exec on the copies only.
  if (::dup2(p.stdin_fd, 0) < 0 || ::dup2(p.stdout_fd, 1) < 0 || ::dup2(p.stderr_fd, 2) < 0)
    child_fail(p.status_fd, Stage::kSetup);

  const ExecIdentity& id = *p.identity;
  if (id.switch_ids) {
    if (::setgroups(id.groups.size(), id.groups.data()) < 0 || ::setgid(id.gid) < 0 || ::setuid(id.uid) < 0)
      child_fail(p.status_fd, Stage::kIds);
  }
  // After the id switch, so the target user's permissions apply.
  bool in_dir = false;
  for (const char* dir : p.cwds) {
    if (::chdir(dir) == 0) {
      in_dir = true;
      break;
    }
  }
  if (!in_dir) child_fail(p.status_fd, Stage::kChdir);

  // glibc's execvpe searches the PATH of the caller's environment.
  environ = const_cast<char**>(p.envp.data());
  ::execvpe(p.argv[0], p.argv.data(), p.envp.data());
  child_fail(p.status_fd, Stage::kExec);
}

SpawnError sys_error(const char* what, const SpawnSpec& spec) {
  const int err = errno;
  return {err, fmt::format("cannot start '{}': {}: {}", spec.argv.front(), what, std::strerror(err))};
}

bool make_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return false;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return true;
}

bool set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// A new PTY: the master (parent side) and the slave (the child's terminal).
bool open_pty(const SpawnSpec& spec, UniqueFd& master, UniqueFd& slave) {
  master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master || ::grantpt(master.get()) < 0 || ::unlockpt(master.get()) < 0) return false;
  char name[64];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) return false;
  slave.reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return false;
  winsize ws{};
  ws.ws_row = spec.rows ? spec.rows : 24;
  ws.ws_col = spec.cols ? spec.cols : 80;
  return ::ioctl(slave.get(), TIOCSWINSZ, &ws) == 0;
}

}  // namespace

std::expected<Child, SpawnError> spawn(const SpawnSpec& spec) {
  Child child;
  UniqueFd status_w;
  if (!make_pipe(child.status, status_w)) return std::unexpected(sys_error("pipe", spec));

  UniqueFd in_r, out_w, err_w, slave;  // the child's ends
  if (spec.pty) {
    UniqueFd master;
    if (!open_pty(spec, master, slave)) return std::unexpected(sys_error("pty", spec));
    child.stdin_fd.reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
    if (!child.stdin_fd) return std::unexpected(sys_error("dup", spec));
    child.stdout_fd = std::move(master);
  } else {
    if (!make_pipe(in_r, child.stdin_fd) || !make_pipe(child.stdout_fd, out_w) || !make_pipe(child.stderr_fd, err_w))
      return std::unexpected(sys_error("pipe", spec));
    if (spec.stdin_closed) child.stdin_fd.reset();  // the child reads EOF at once
  }
  for (const UniqueFd* fd : {&child.status, &child.stdin_fd, &child.stdout_fd, &child.stderr_fd}) {
    if (fd->valid() && !set_nonblocking(fd->get())) return std::unexpected(sys_error("fcntl", spec));
  }

  ChildPlan plan;
  for (const auto& a : spec.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  for (const auto& e : spec.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
  plan.envp.push_back(nullptr);
  for (const auto& d : spec.cwds) plan.cwds.push_back(d.c_str());
  plan.identity = &spec.identity;
  plan.pty = spec.pty;
  plan.stdin_fd = spec.pty ? slave.get() : in_r.get();
  plan.stdout_fd = spec.pty ? slave.get() : out_w.get();
  plan.stderr_fd = spec.pty ? slave.get() : err_w.get();
  plan.status_fd = status_w.get();

  child.pid = ::fork();
  if (child.pid < 0) return std::unexpected(sys_error("fork", spec));
  if (child.pid == 0) run_child(plan);
  // The parent's copies of the child's ends close here (RAII), so that EOF
  // on the status pipe and on the outputs depends on the child alone.
  return child;
}

StatusRead read_exec_status(int status_fd, const SpawnSpec& spec, SpawnError* error) {
  ExecReport report{};
  ssize_t n;
  do {
    n = ::read(status_fd, &report, sizeof report);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return StatusRead::kExecuted;
  if (n < 0 && errno == EAGAIN) return StatusRead::kNotReady;
  if (n != static_cast<ssize_t>(sizeof report)) {
    *error = {EIO, fmt::format("cannot start '{}': lost track of the child", spec.argv.front())};
    return StatusRead::kFailed;
  }
  const char* reason = std::strerror(report.err);
  error->err = report.err;
  switch (report.stage) {
    case Stage::kExec:
      error->message = fmt::format("cannot run '{}': {}", spec.argv.front(), reason);
      break;
    case Stage::kChdir:
      error->message = fmt::format("cannot change directory to '{}': {}", spec.cwds.back(), reason);
      break;
    case Stage::kIds:
      error->message = fmt::format("cannot switch to uid {} gid {}: {}", spec.identity.uid, spec.identity.gid, reason);
      break;
    default:
      error->message = fmt::format("cannot set up '{}': {}", spec.argv.front(), reason);
      break;
  }
  return StatusRead::kFailed;
}

}  // namespace ksbox::agent
