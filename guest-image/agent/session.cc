#include "session.h"

#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>

#include "exec_env.h"
#include "log.h"

namespace ksbox::agent {

namespace proto = ksbox::protocol;
using proto::MsgType;

namespace {

// One read buffer for everybody: the loop is single-threaded and every read
// is consumed before the next one.
std::array<uint8_t, size_t{128} << 10> g_scratch;

constexpr uint8_t kTtyEof = 0x04;  // ^D, the default VEOF character
constexpr uint32_t kIn = EPOLLIN;
constexpr uint32_t kOut = EPOLLOUT;

}  // namespace

Session::Session(EventLoop& loop, SessionHost& host, const SessionLimits& limits, UniqueFd socket, uint64_t id)
    : loop_(loop), host_(host), limits_(limits), id_(id) {
  sock_ = WatchedFd(loop_, std::move(socket), 0, [this](uint32_t ev) { guarded([&] { on_socket(ev); }); });
}

Session::~Session() {
  // Never leave a child running unobserved; the server reaps it.
  kill_child(SIGKILL);
}

template <typename F>
void Session::guarded(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    log("connection {}: internal error: {}", id_, e.what());
    abort();
  }
}

void Session::start() {
  guarded([&] {
    handshake_timer_ = TimerHandle(loop_, limits_.handshake_timeout, [this] {
      log("connection {}: no request within {} ms, closing", id_, limits_.handshake_timeout.count());
      finish();
    });
    queue(proto::Hello{});
    flush();
  });
}

void Session::abort() {
  kill_child(SIGKILL);
  finish();
}

// --- connection ---------------------------------------------------------------------

void Session::on_socket(uint32_t events) {
  if (events & EPOLLERR) {
    peer_gone();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP)) {
    if (sock_.events() & EPOLLIN) {
      read_socket();
    } else if (events & EPOLLHUP) {
      peer_gone();  // nothing more to read and nobody to write to
      return;
    }
  }
  if (sock_.valid() && (events & EPOLLOUT)) flush();
}

void Session::read_socket() {
  const ssize_t n = ::recv(sock_.get(), g_scratch.data(), g_scratch.size(), MSG_DONTWAIT);
  if (n > 0) {
    decoder_.feed(std::span(g_scratch.data(), static_cast<size_t>(n)));
    process_frames();
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n == 0 && decoder_.buffered() > 0) {
    protocol_violation("peer closed the connection inside a frame");
    return;
  }
  peer_gone();  // EOF (clients must not half-close: end stdin with StdinEof) or an error
}

bool Session::accepting_frames() const {
  switch (state_) {
    case State::kHandshake:
    case State::kAwaitRequest:
      return true;
    case State::kRunning:
      return stdin_buf_.size() < limits_.max_pending_stdin;
    default:
      return false;  // kSpawning: frames wait in the decoder until Started
  }
}

void Session::process_frames() {
  while (sock_.valid() && accepting_frames()) {
    auto r = decoder_.next();
    if (r.status == proto::FrameDecoder::Status::kNeedMore) break;
    if (r.status == proto::FrameDecoder::Status::kError) {
      protocol_violation(proto::to_string(r.error));
      return;
    }
    handle_frame(r.frame);
  }
  if (sock_.valid()) update_socket_events();
}

void Session::resume_input() {
  if (sock_.valid()) process_frames();
}

void Session::handle_frame(const proto::Frame& frame) {
  switch (state_) {
    case State::kHandshake:
      on_hello(frame);
      break;
    case State::kAwaitRequest:
      on_request(frame);
      break;
    case State::kRunning:
      on_running_frame(frame);
      break;
    default:
      break;  // not reached: accepting_frames() is false
  }
}

void Session::on_hello(const proto::Frame& frame) {
  proto::Hello hello;
  if (auto e = proto::decode(frame, hello); e != proto::ProtoError::kOk) {
    protocol_violation(frame.type == MsgType::kHello ? proto::to_string(e) : "expected Hello");
    return;
  }
  if (!proto::negotiate(proto::Hello{}, hello)) {
    send_error_and_close(proto::kErrUnsupported,
                         fmt::format("no common protocol version: agent speaks {}..{}, peer {}..{}",
                                     proto::kMinProtocolVersion, proto::kMaxProtocolVersion, hello.min_version,
                                     hello.max_version));
    return;
  }
  state_ = State::kAwaitRequest;
}

void Session::on_request(const proto::Frame& frame) {
  if (frame.type == MsgType::kExecRequest) {
    proto::ExecRequest req;
    if (auto e = proto::decode(frame, req); e != proto::ProtoError::kOk) {
      protocol_violation(proto::to_string(e));
      return;
    }
    start_exec(std::move(req));
    return;
  }
  if (frame.type == MsgType::kShutdown) {
    proto::Shutdown msg;
    if (auto e = proto::decode(frame, msg); e != proto::ProtoError::kOk) {
      protocol_violation(proto::to_string(e));
      return;
    }
    if (!host_.may_shut_down()) {
      send_error_and_close(proto::kErrBadRequest, "shutdown refused: ksbox-agent is not PID 1");
      return;
    }
    finish();
    host_.shut_down();
    return;
  }
  protocol_violation("expected ExecRequest or Shutdown");
}

void Session::on_running_frame(const proto::Frame& frame) {
  switch (frame.type) {
    case MsgType::kStdinData:
      // The payload is the data; FrameDecoder already bounded its size.
      on_stdin_data(frame.payload);
      return;
    case MsgType::kStdinEof: {
      proto::StdinEof msg;
      if (proto::decode(frame, msg) != proto::ProtoError::kOk) break;
      on_stdin_eof();
      return;
    }
    case MsgType::kSignal: {
      proto::Signal msg;
      if (proto::decode(frame, msg) != proto::ProtoError::kOk) break;
      kill_child(msg.signo);
      return;
    }
    case MsgType::kResize: {
      proto::Resize msg;
      if (proto::decode(frame, msg) != proto::ProtoError::kOk) break;
      on_resize(msg);
      return;
    }
    default:
      protocol_violation(fmt::format("unexpected message type {} while running", static_cast<int>(frame.type)));
      return;
  }
  protocol_violation(fmt::format("malformed message of type {}", static_cast<int>(frame.type)));
}

template <typename M>
void Session::queue(const M& msg) {
  if (auto e = proto::encode(out_.appender(), msg); e != proto::ProtoError::kOk)
    log("connection {}: cannot encode message {}: {}", id_, static_cast<int>(M::kType), proto::to_string(e));
}

void Session::send_error_and_close(uint32_t code, std::string message) {
  if (message.size() > proto::kMaxErrorMessage) message.resize(proto::kMaxErrorMessage);
  queue(proto::ErrorMsg{code, std::move(message)});
  state_ = State::kClosing;
  flush();
}

void Session::flush() {
  while (!out_.empty()) {
    const auto data = out_.front();
    const ssize_t n = ::send(sock_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_.consume(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      peer_gone();
      return;
    }
  }
  if (state_ == State::kClosing && out_.empty()) {
    finish();
    return;
  }
  update_output_events();
  update_socket_events();
}

void Session::update_socket_events() {
  if (!sock_.valid()) return;
  uint32_t ev = out_.empty() ? 0 : kOut;
  if (accepting_frames()) ev |= kIn;
  sock_.set_events(ev);
}

// --- child ---------------------------------------------------------------------------

void Session::start_exec(proto::ExecRequest req) {
  handshake_timer_.reset();
  spec_.identity = resolve_identity(req.uid, req.gid);
  spec_.env = build_env(spec_.identity, req.pty(), req.env);
  spec_.cwds = cwd_candidates(spec_.identity, req.cwd);
  spec_.argv = std::move(req.argv);
  spec_.pty = req.pty();
  spec_.stdin_closed = req.stdin_closed();
  spec_.rows = req.rows;
  spec_.cols = req.cols;

  auto child = spawn(spec_);
  if (!child) {
    log("connection {}: {}", id_, child.error().message);
    send_error_and_close(static_cast<uint32_t>(child.error().err), child.error().message);
    return;
  }
  pid_ = child->pid;
  host_.watch_pid(pid_, *this);
  state_ = State::kSpawning;
  auto handler = [this](WatchedFd& fd, MsgType type) {
    return [this, &fd, type](uint32_t) { guarded([&] { on_output(fd, type); }); };
  };
  // Registered now, armed once the child runs.
  if (child->stdin_fd) {
    stdin_ = WatchedFd(loop_, std::move(child->stdin_fd), 0, [this](uint32_t) {
      guarded([&] {
        write_stdin();
        resume_input();
      });
    });
  }
  stdout_ = WatchedFd(loop_, std::move(child->stdout_fd), 0, handler(stdout_, MsgType::kStdoutData));
  if (child->stderr_fd)
    stderr_ = WatchedFd(loop_, std::move(child->stderr_fd), 0, handler(stderr_, MsgType::kStderrData));
  status_ = WatchedFd(loop_, std::move(child->status), EPOLLIN, [this](uint32_t ev) {
    guarded([&] { on_status(ev); });
  });
  update_socket_events();
}

void Session::on_status(uint32_t) {
  SpawnError error;
  switch (read_exec_status(status_.get(), spec_, &error)) {
    case StatusRead::kNotReady:
      return;
    case StatusRead::kFailed:
      // The child _exits; it stays watched so that its reaping is not mistaken
      // for anything else, and finish() forgets it.
      status_.reset();
      stdin_.reset();
      stdout_.reset();
      stderr_.reset();
      send_error_and_close(static_cast<uint32_t>(error.err), std::move(error.message));
      return;
    case StatusRead::kExecuted:
      break;
  }
  status_.reset();
  state_ = State::kRunning;
  queue(proto::Started{static_cast<uint32_t>(pid_)});
  if (exit_status_) {
    handle_exit();  // it already ran and exited
    return;
  }
  update_output_events();
  process_frames();  // requests that arrived while spawning
  if (state_ == State::kRunning) flush();
}

Session::ReadResult Session::read_output(WatchedFd& fd, MsgType type) {
  const ssize_t n = ::read(fd.get(), g_scratch.data(), g_scratch.size());
  if (n > 0) {
    const std::span data(g_scratch.data(), static_cast<size_t>(n));
    if (type == MsgType::kStdoutData) {
      proto::encode_data<MsgType::kStdoutData>(out_.appender(), data);
    } else {
      proto::encode_data<MsgType::kStderrData>(out_.appender(), data);
    }
    return ReadResult::kData;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return ReadResult::kWouldBlock;
  // EOF, or EIO from a PTY master once every slave is closed.
  fd.reset();
  return ReadResult::kEof;
}

void Session::on_output(WatchedFd& fd, MsgType type) {
  if (state_ != State::kRunning) return;
  if (read_output(fd, type) == ReadResult::kData) flush();
  if (state_ == State::kRunning) update_output_events();
}

void Session::update_output_events() {
  const bool want = state_ == State::kRunning && sock_.valid() && out_.size() < limits_.max_unsent_output;
  for (WatchedFd* fd : {&stdout_, &stderr_})
    if (fd->valid()) fd->set_events(want ? kIn : 0);
}

void Session::write_stdin() {
  while (stdin_.valid() && !stdin_buf_.empty()) {
    const auto data = stdin_buf_.front();
    const ssize_t n = ::write(stdin_.get(), data.data(), data.size());
    if (n > 0) {
      stdin_buf_.consume(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      stdin_.reset();  // the child closed its stdin (EPIPE) or the PTY is gone
    }
  }
  if (!stdin_.valid()) {
    stdin_buf_.clear();  // nobody will read it
    return;
  }
  if (stdin_buf_.empty() && stdin_eof_ && !spec_.pty) {
    stdin_.reset();  // the child sees EOF
    return;
  }
  stdin_.set_events(stdin_buf_.empty() ? 0 : kOut);
}

void Session::on_stdin_data(std::span<const uint8_t> data) {
  if (stdin_eof_) {
    protocol_violation("StdinData after StdinEof");
    return;
  }
  if (!stdin_.valid() || data.empty()) return;  // stdin closed (by the child or by request): dropped
  stdin_buf_.append(data);
  write_stdin();
}

// Pipe mode: close the pipe once the buffered input is written. PTY mode:
// write one VEOF (^D) after it, which ends the input of a program reading
// the terminal in canonical mode at the start of a line (a partial last line
// is delivered by that ^D and needs a second one to read as EOF).
void Session::on_stdin_eof() {
  if (stdin_eof_) {
    protocol_violation("StdinEof twice");
    return;
  }
  stdin_eof_ = true;
  if (!stdin_.valid()) return;
  if (spec_.pty) stdin_buf_.append(std::span(&kTtyEof, 1));
  write_stdin();
}

void Session::on_resize(const proto::Resize& r) {
  const WatchedFd& master = stdout_.valid() ? stdout_ : stdin_;
  if (!spec_.pty || !master.valid()) return;
  winsize ws{};
  ws.ws_row = r.rows;
  ws.ws_col = r.cols;
  ::ioctl(master.get(), TIOCSWINSZ, &ws);  // the kernel sends SIGWINCH to the foreground group
}

void Session::child_exited(int wait_status) {
  guarded([&] {
    exit_status_ = wait_status;
    switch (state_) {
      case State::kRunning:
        handle_exit();
        break;
      case State::kOrphaned:
        finish();
        break;
      default:
        break;  // kSpawning: the status pipe decides what comes next
    }
  });
}

// Everything the exited child wrote is in its pipes now: read until they
// would block, send it, then Exited. Output that background grandchildren
// write later through inherited descriptors is not waited for.
void Session::handle_exit() {
  for (auto [fd, type] : {std::pair{&stdout_, MsgType::kStdoutData}, std::pair{&stderr_, MsgType::kStderrData}}) {
    size_t drained = 0;
    while (fd->valid() && drained < limits_.max_drain_after_exit) {
      const size_t before = out_.size();
      if (read_output(*fd, type) != ReadResult::kData) break;
      drained += out_.size() - before;
    }
    fd->reset();
  }
  stdin_.reset();
  stdin_buf_.clear();

  const int st = *exit_status_;
  proto::Exited exited;
  if (WIFSIGNALED(st)) {
    exited.kind = proto::Exited::kKilledBySignal;
    exited.value = WTERMSIG(st);
  } else {
    exited.value = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
  }
  queue(exited);
  state_ = State::kClosing;
  flush();
}

void Session::kill_child(int signo) {
  if (!child_alive()) return;  // once reaped, its pid and group id may be reused
  // The child leads its own group (setsid); before its setsid the group does
  // not exist yet, so fall back to the pid.
  if (::kill(-pid_, signo) < 0) ::kill(pid_, signo);
}

// --- ending --------------------------------------------------------------------------

void Session::protocol_violation(std::string_view why) {
  host_.count_protocol_error();
  log("connection {}: protocol error: {}; closing it", id_, why);
  peer_gone();
}

void Session::peer_gone() {
  sock_.reset();
  out_.clear();
  decoder_ = {};
  if (!child_alive() || (state_ != State::kRunning && state_ != State::kSpawning)) {
    finish();
    return;
  }
  state_ = State::kOrphaned;
  status_.reset();
  stdin_.reset();
  stdout_.reset();
  stderr_.reset();
  stdin_buf_.clear();
  kill_child(SIGHUP);
  kill_timer_ = TimerHandle(loop_, limits_.kill_grace, [this] {
    kill_child(SIGKILL);
    finish();
  });
}

void Session::finish() {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  if (child_alive()) {
    kill_child(SIGKILL);
    host_.unwatch_pid(pid_);  // reaped by the server as any other process
  }
  pid_ = -1;
  handshake_timer_.reset();
  kill_timer_.reset();
  status_.reset();
  stdin_.reset();
  stdout_.reset();
  stderr_.reset();
  sock_.reset();
  out_.clear();
  stdin_buf_.clear();
  host_.session_finished(*this);
}

}  // namespace ksbox::agent
