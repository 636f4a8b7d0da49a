#include "server.h"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <thread>

#include "log.h"
#include "pid1.h"
#include "vmm/error.h"

namespace ksbox::agent {

Server::Server(const ServerOptions& opts) : opts_(opts) {
  ::signal(SIGPIPE, SIG_IGN);  // sockets use MSG_NOSIGNAL; stdin pipes need this
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  if (!opts_.pid1) {
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) log("PR_SET_CHILD_SUBREAPER: {}", std::strerror(errno));
  }
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) < 0) throw_errno("sigprocmask");
  UniqueFd sfd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sfd) throw_errno("signalfd");
  signals_ = WatchedFd(loop_, std::move(sfd), EPOLLIN, [this](uint32_t) { on_signal(); });
  listener_ = WatchedFd(loop_, listen_on(opts_.listen), EPOLLIN, [this](uint32_t) { on_listener(); });
  reap();  // children that exited before the signalfd existed
}

Server::~Server() {
  // Sessions first (they SIGKILL their children), while the loop still
  // exists; then reap those children, rather than leave zombies to our parent.
  std::vector<pid_t> children;
  for (const auto& [pid, s] : pids_) children.push_back(pid);
  sessions_.clear();
  finished_.clear();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (const pid_t pid : children) {
    while (::waitpid(pid, nullptr, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (opts_.listen.kind == ListenAddress::Kind::kUnix && opts_.listen.path.front() != '@')
    ::unlink(opts_.listen.path.c_str());
}

void Server::run() {
  while (!stop_) {
    try {
      loop_.run_once();
    } catch (const std::exception& e) {
      log("event loop: {}", e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // no hot spin on a persistent failure
    }
    finished_.clear();
  }
  log("exiting ({} sessions open, {} protocol errors)", sessions_.size(), protocol_errors_);
}

void Server::on_listener() {
  for (int i = 0; i < 16; ++i) {  // a few per round, so busy sessions are not starved
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      const int err = errno;
      if (err == EAGAIN || err == EINTR || err == ECONNABORTED) return;
      // Out of descriptors or memory: the listener stays readable, so pause
      // it instead of spinning, and try again shortly.
      log("accept: {}; pausing for 200 ms", std::strerror(err));
      listener_.set_events(0);
      accept_retry_ = TimerHandle(loop_, std::chrono::milliseconds(200), [this] {
        accept_retry_.reset();
        listener_.set_events(EPOLLIN);
      });
      return;
    }
    const uint64_t id = next_id_++;
    auto session = std::make_unique<Session>(loop_, *this, opts_.limits, std::move(fd), id);
    Session& s = *session;
    sessions_.emplace(id, std::move(session));
    s.start();
  }
}

void Server::on_signal() {
  signalfd_siginfo info[16];
  for (;;) {
    const ssize_t n = ::read(signals_.get(), info, sizeof info);
    if (n <= 0) break;
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof info[0]; ++i) {
      if (info[i].ssi_signo != SIGCHLD) stop_ = true;
    }
  }
  reap();  // SIGCHLD coalesces: always reap everything that is ready
}

void Server::reap() {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    const auto it = pids_.find(pid);
    if (it == pids_.end()) continue;  // an orphan, or a session's child it let go of
    Session* s = it->second;
    pids_.erase(it);
    s->child_exited(status);
  }
}

void Server::watch_pid(pid_t pid, Session& session) { pids_[pid] = &session; }

void Server::unwatch_pid(pid_t pid) { pids_.erase(pid); }

void Server::session_finished(Session& session) {
  auto it = sessions_.find(session.id());
  if (it == sessions_.end()) return;
  finished_.push_back(std::move(it->second));
  sessions_.erase(it);
}

bool Server::may_shut_down() const {
  // Only the real init: reboot() from anything else would be wrong (and on
  // a host-side test run, dangerous).
  return opts_.pid1 && ::getpid() == 1;
}

void Server::shut_down() {
  power_off();
  // Still here: the reboot failed, and power_off() reaped children behind
  // the sessions' backs. End them all and keep serving.
  std::vector<Session*> all;
  for (auto& [id, s] : sessions_) all.push_back(s.get());
  pids_.clear();
  for (Session* s : all) {
    s->forget_child();
    s->abort();
  }
}

}  // namespace ksbox::agent
