#include "cli_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#ifndef KSBOX_CLI_PATH
#error "KSBOX_CLI_PATH must name the ksbox binary"
#endif

extern char** environ;

namespace ksbox::cli::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct Pipe {
  UniqueFd r, w;
};
Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void set_nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

CliProcess::CliProcess(SpawnOptions opts, std::string stdin_data) : stdin_data_(std::move(stdin_data)) {
  Pipe in, out, err;
  if (opts.stdin_fd < 0) in = make_pipe();
  if (opts.stdout_fd < 0) out = make_pipe();
  if (opts.stderr_fd < 0) err = make_pipe();
  const int child_in = opts.stdin_fd >= 0 ? opts.stdin_fd : in.r.get();
  const int child_out = opts.stdout_fd >= 0 ? opts.stdout_fd : out.w.get();
  const int child_err = opts.stderr_fd >= 0 ? opts.stderr_fd : err.w.get();

  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls (this process has threads).
  std::vector<std::string> args = {KSBOX_CLI_PATH};
  args.insert(args.end(), opts.args.begin(), opts.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (opts.env) {
    for (auto& e : *opts.env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  char* const* env = opts.env ? envp.data() : environ;

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (opts.new_session_ctty) {
      ::setsid();
      ::ioctl(child_in, TIOCSCTTY, 0);
    }
    // Through fds above 2 first, so that dup2 cannot clobber a source.
    const int a = ::fcntl(child_in, F_DUPFD, 10), b = ::fcntl(child_out, F_DUPFD, 10),
              c = ::fcntl(child_err, F_DUPFD, 10);
    if (a < 0 || b < 0 || c < 0 || ::dup2(a, 0) < 0 || ::dup2(b, 1) < 0 || ::dup2(c, 2) < 0) ::_exit(120);
    ::syscall(SYS_close_range, 3, ~0u, 0);
    ::execve(argv[0], argv.data(), env);
    ::_exit(121);
  }
  pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  in_ = std::move(in.w);
  out_ = std::move(out.r);
  err_ = std::move(err.r);
  if (in_) set_nonblock(in_.get());
  if (in_ && stdin_data_.empty()) in_.reset();
}

CliProcess::~CliProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

CliRun CliProcess::wait(std::chrono::milliseconds timeout) {
  CliRun run;
  const auto deadline = Clock::now() + timeout;
  bool exited = false;
  for (;;) {
    pollfd p[4] = {{in_ ? in_.get() : -1, POLLOUT, 0},
                   {out_ ? out_.get() : -1, POLLIN, 0},
                   {err_ ? err_.get() : -1, POLLIN, 0},
                   {exited ? -1 : pidfd_.get(), POLLIN, 0}};
    if (exited && !out_ && !err_) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      run.timed_out = true;
      ::kill(pid_, SIGKILL);
      in_.reset();
      out_.reset();
      err_.reset();
      break;
    }
    if (::poll(p, 4, static_cast<int>(left)) < 0 && errno != EINTR) throw std::runtime_error("poll");
    if (p[0].revents) {
      const ssize_t n = ::write(in_.get(), stdin_data_.data() + stdin_off_, stdin_data_.size() - stdin_off_);
      if (n > 0) stdin_off_ += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_off_ == stdin_data_.size()) in_.reset();
    }
    char buf[65536];
    struct Sink {
      const pollfd& p;
      UniqueFd& fd;
      std::string& data;
    };
    for (const Sink s : {Sink{p[1], out_, run.out}, Sink{p[2], err_, run.err}}) {
      if (!s.p.revents) continue;
      const ssize_t n = ::read(s.fd.get(), buf, sizeof(buf));
      if (n > 0)
        s.data.append(buf, static_cast<size_t>(n));
      else if (n == 0 || (errno != EINTR && errno != EAGAIN))
        s.fd.reset();
    }
    if (p[3].revents) {
      exited = true;
      in_.reset();
    }
  }
  int st = 0;
  ::waitpid(pid_, &st, 0);
  reaped_ = true;
  if (WIFEXITED(st)) run.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) run.term_signal = WTERMSIG(st);
  return run;
}

CliRun run_cli(std::vector<std::string> args, std::string stdin_data, std::chrono::milliseconds timeout) {
  CliProcess p({.args = std::move(args)}, std::move(stdin_data));
  return p.wait(timeout);
}

}  // namespace ksbox::cli::testing
