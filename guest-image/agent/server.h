// The agent's server: one epoll loop (single thread) with the listening
// socket, a signalfd for SIGCHLD (and SIGTERM/SIGINT/SIGHUP when not PID 1)
// and every session's descriptors. Reaps every child: pids that belong to a
// session are passed to it, all others (orphans) are just reaped.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "event_loop.h"
#include "listener.h"
#include "session.h"

namespace ksbox::agent {

struct ServerOptions {
  ListenAddress listen;
  bool pid1 = false;  // init duties: Shutdown powers off; no exit on SIGTERM
  SessionLimits limits;
};

class Server final : public SessionHost {
 public:
  // Blocks the signals it handles, becomes a child subreaper (when not PID 1,
  // so that orphans of sessions are still reaped here), listens. Throws Error.
  explicit Server(const ServerOptions& opts);
  ~Server();  // kills the children of sessions still running

  // Serves until SIGTERM, SIGINT or SIGHUP arrives (never as PID 1).
  void run();

  // SessionHost
  void watch_pid(pid_t pid, Session& session) override;
  void unwatch_pid(pid_t pid) override;
  void session_finished(Session& session) override;
  void count_protocol_error() override { ++protocol_errors_; }
  bool may_shut_down() const override;
  void shut_down() override;

 private:
  void on_listener();
  void on_signal();
  void reap();

  ServerOptions opts_;
  // Declared before what registers with it: destroyed last.
  EventLoop loop_;
  WatchedFd listener_;
  WatchedFd signals_;
  TimerHandle accept_retry_;
  std::unordered_map<uint64_t, std::unique_ptr<Session>> sessions_;
  std::unordered_map<pid_t, Session*> pids_;
  std::vector<std::unique_ptr<Session>> finished_;  // destroyed after each round
  uint64_t next_id_ = 1;
  uint64_t protocol_errors_ = 0;
  bool stop_ = false;
};

}  // namespace ksbox::agent
