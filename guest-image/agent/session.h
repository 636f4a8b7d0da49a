// One connection: the Hello exchange, then one request. An ExecRequest runs
// one child and streams its I/O until it exits; a Shutdown powers the guest
// off (when PID 1). Everything the peer sends is untrusted: any protocol
// error drops this connection only.
//
// Life of an exec:
//   kHandshake -> kAwaitRequest -> kSpawning (until the status pipe says
//   exec happened) -> kRunning -> (child reaped) -> kClosing (final output,
//   Exited, flush) -> kDone.
//   Peer gone while the child runs -> kOrphaned: SIGHUP to its process
//   group, SIGKILL 2 s later unless it exits first -> kDone.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "byte_queue.h"
#include "event_loop.h"
#include "protocol/exec_protocol.h"
#include "spawn.h"
#include "vmm/unique_fd.h"

namespace ksbox::agent {

// Flow-control bounds and timeouts of one session.
struct SessionLimits {
  // Stop reading the child's output while more than this is unsent.
  size_t max_unsent_output = size_t{1} << 20;
  // Stop reading the socket while more stdin than this waits for the child.
  size_t max_pending_stdin = size_t{4} << 20;
  // Output still read after the child's exit, per stream: what it left in
  // its pipes, but not an endless stream from a background grandchild.
  size_t max_drain_after_exit = size_t{4} << 20;
  std::chrono::milliseconds handshake_timeout{10'000};  // connect -> request
  std::chrono::milliseconds kill_grace{2'000};           // SIGHUP -> SIGKILL
};

class Session;

// What a session needs from the server that owns it.
class SessionHost {
 public:
  virtual void watch_pid(pid_t pid, Session& session) = 0;
  virtual void unwatch_pid(pid_t pid) = 0;
  // The session is done; the host destroys it after the current loop round.
  virtual void session_finished(Session& session) = 0;
  virtual void count_protocol_error() = 0;
  virtual bool may_shut_down() const = 0;
  // Powers off; returns only if that failed.
  virtual void shut_down() = 0;

 protected:
  ~SessionHost() = default;
};

class Session {
 public:
  Session(EventLoop& loop, SessionHost& host, const SessionLimits& limits, UniqueFd socket, uint64_t id);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();  // kills a child still running (SIGKILL to its group)

  uint64_t id() const { return id_; }
  // Sends our Hello and starts reading. Call once the host tracks the session.
  void start();
  // The host reaped our child with this wait status.
  void child_exited(int wait_status);
  // Ends the session at once (agent exiting, or the child was reaped behind
  // our back): kills a running child, drops the connection.
  void abort();
  // The child was reaped by someone else (shutdown): never signal its pid.
  void forget_child() { pid_ = -1; }

 private:
  enum class State { kHandshake, kAwaitRequest, kSpawning, kRunning, kClosing, kOrphaned, kDone };

  template <typename F>
  void guarded(F&& f);

  // connection
  void on_socket(uint32_t events);
  void read_socket();
  bool accepting_frames() const;
  void process_frames();
  void resume_input();
  void handle_frame(const protocol::Frame& frame);
  void on_hello(const protocol::Frame& frame);
  void on_request(const protocol::Frame& frame);
  void on_running_frame(const protocol::Frame& frame);
  template <typename M>
  void queue(const M& msg);
  void send_error_and_close(uint32_t code, std::string message);
  void flush();
  void update_socket_events();

  // child
  void start_exec(protocol::ExecRequest req);
  void on_status(uint32_t events);
  enum class ReadResult { kData, kWouldBlock, kEof };
  ReadResult read_output(WatchedFd& fd, protocol::MsgType type);
  void on_output(WatchedFd& fd, protocol::MsgType type);
  void update_output_events();
  void write_stdin();
  void on_stdin_data(std::span<const uint8_t> data);
  void on_stdin_eof();
  void on_resize(const protocol::Resize& r);
  void handle_exit();
  bool child_alive() const { return pid_ > 0 && !exit_status_; }
  void kill_child(int signo);

  // ending
  void protocol_violation(std::string_view why);
  void peer_gone();
  void finish();

  EventLoop& loop_;
  SessionHost& host_;
  const SessionLimits& limits_;
  const uint64_t id_;
  State state_ = State::kHandshake;

  WatchedFd sock_;
  protocol::FrameDecoder decoder_;
  ByteQueue out_;
  TimerHandle handshake_timer_;

  SpawnSpec spec_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;  // set once the child is reaped
  WatchedFd status_;
  WatchedFd stdin_;
  WatchedFd stdout_;
  WatchedFd stderr_;
  ByteQueue stdin_buf_;
  bool stdin_eof_ = false;
  TimerHandle kill_timer_;
};

}  // namespace ksbox::agent
