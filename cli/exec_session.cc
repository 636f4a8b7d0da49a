#include "cli/exec_session.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "cli/exit_codes.h"
#include "cli/output_writer.h"
#include "cli/signals.h"
#include "cli/terminal.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

namespace proto = ksbox::protocol;
using Clock = std::chrono::steady_clock;
using Kind = SessionResult::Kind;

constexpr size_t kStdinChunk = size_t{64} << 10;
constexpr size_t kRecvChunk = size_t{128} << 10;
constexpr size_t kMaxPendingOutput = size_t{1} << 20;  // stop reading the socket above this
constexpr size_t kMaxPendingSend = size_t{256} << 10;  // stop reading stdin above this

class ExecSession {
 public:
  ExecSession(int conn, const proto::ExecRequest& req, const SessionIo& io, const SessionOptions& opts)
      : sock_(conn), req_(req), io_(io), opts_(opts), stdin_open_(io.in >= 0) {
    last_size_ = {req.rows, req.cols};
  }

  SessionResult run();

 private:
  enum class Phase { kHello, kStarting, kRunning, kFinishing };

  // drain: wait until the output queued so far is written before returning.
  void finish(Kind kind, int status, std::string message, bool drain) {
    result_ = SessionResult{kind, status, std::move(message)};
    phase_ = Phase::kFinishing;
    drain_ = drain;
    if (!drain) writer_.discard();
  }
  void fail(std::string message) { finish(Kind::kFailed, kExitConnection, std::move(message), true); }
  bool done() const { return phase_ == Phase::kFinishing && (!drain_ || writer_.pending() == 0); }

  template <typename M>
  void queue(const M& m) {
    if (tx_dead_) return;
    if (proto::encode(tx_, m) != proto::ProtoError::kOk) throw Error("cannot encode a message for the agent");
  }
  size_t tx_pending() const { return tx_.size() - tx_off_; }

  void flush_tx();
  void read_socket();
  void handle_frame(proto::Frame& f);
  void read_stdin();
  void handle_signals();
  void forward_signal(int signo);
  void send_resize();
  void handle_writer();

  int sock_;
  const proto::ExecRequest& req_;
  const SessionIo& io_;
  const SessionOptions& opts_;
  Phase phase_ = Phase::kHello;
  SessionResult result_;
  bool drain_ = true;

  std::vector<uint8_t> tx_;
  size_t tx_off_ = 0;
  bool tx_dead_ = false;  // the agent stopped reading; what it sent may still arrive
  proto::FrameDecoder decoder_;
  OutputWriter writer_;
  bool stdin_open_;
  std::vector<int> early_signals_;  // received before Started
  bool resize_pending_ = false;
  WindowSize last_size_;
  std::optional<Clock::time_point> last_sigint_;
  bool sigpipe_forwarded_ = false;
};

void ExecSession::flush_tx() {
  while (tx_pending() > 0 && !tx_dead_) {
    const ssize_t n = ::send(sock_, tx_.data() + tx_off_, tx_pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      tx_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    // EPIPE/ECONNRESET: the agent is gone or going; its last messages
    // (Exited) may still be in our receive buffer, so the read side decides.
    tx_dead_ = true;
    stdin_open_ = false;
  }
  if (tx_off_ == tx_.size() || tx_dead_) {
    tx_.clear();
    tx_off_ = 0;
  } else if (tx_off_ > kMaxPendingSend) {
    tx_.erase(tx_.begin(), tx_.begin() + static_cast<std::ptrdiff_t>(tx_off_));
    tx_off_ = 0;
  }
}

void ExecSession::read_socket() {
  std::vector<uint8_t> buf(kRecvChunk);
  const ssize_t n = ::recv(sock_, buf.data(), buf.size(), 0);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    if (errno != ECONNRESET) return fail(fmt::format("reading from the agent: {}", std::strerror(errno)));
  }
  if (n <= 0) {
    const bool mid_frame = decoder_.buffered() != 0;
    return fail(fmt::format("the connection to the agent was lost{} before the command exited",
                            mid_frame ? " in the middle of a message" : ""));
  }
  decoder_.feed({buf.data(), static_cast<size_t>(n)});
  while (phase_ != Phase::kFinishing) {
    auto r = decoder_.next();
    if (r.status == proto::FrameDecoder::Status::kNeedMore) break;
    if (r.status == proto::FrameDecoder::Status::kError)
      return fail(fmt::format("protocol error from the agent: {}", proto::to_string(r.error)));
    handle_frame(r.frame);
  }
}

void ExecSession::handle_frame(proto::Frame& f) {
  const auto bad = [&](proto::ProtoError e) {
    fail(fmt::format("protocol error from the agent: {} in message type {}", proto::to_string(e),
                     static_cast<int>(f.type)));
  };
  if (f.type == proto::MsgType::kError) {
    proto::ErrorMsg m;
    if (auto e = proto::decode(f, m); e != proto::ProtoError::kOk) return bad(e);
    const int status = m.code == ENOENT ? kExitNotFound : kExitCannotExecute;
    if (m.message.empty()) m.message = fmt::format("the agent could not run the command (error {})", m.code);
    return finish(Kind::kAgentError, status, std::move(m.message), true);
  }
  switch (phase_) {
    case Phase::kHello: {
      proto::Hello theirs;
      if (auto e = proto::decode(f, theirs); e != proto::ProtoError::kOk) return bad(e);
      const proto::Hello ours;
      if (!proto::negotiate(ours, theirs))
        return fail(fmt::format("no common protocol version (ours {}..{}, the agent's {}..{})", ours.min_version,
                                ours.max_version, theirs.min_version, theirs.max_version));
      queue(req_);
      phase_ = Phase::kStarting;
      return;
    }
    case Phase::kStarting: {
      proto::Started started;
      if (auto e = proto::decode(f, started); e != proto::ProtoError::kOk) return bad(e);
      phase_ = Phase::kRunning;
      // No stdin to forward, and the agent was not told: end its input now.
      if (!stdin_open_ && !req_.stdin_closed()) queue(proto::StdinEof{});
      for (const int s : std::exchange(early_signals_, {})) forward_signal(s);
      if (resize_pending_) send_resize();
      return;
    }
    case Phase::kRunning:
      switch (f.type) {
        case proto::MsgType::kStdoutData:  // the payload is the data; FrameDecoder bounded it
          return writer_.push(io_.out, std::move(f.payload));
        case proto::MsgType::kStderrData:
          return writer_.push(io_.err, std::move(f.payload));
        case proto::MsgType::kExited: {
          proto::Exited ex;
          if (auto e = proto::decode(f, ex); e != proto::ProtoError::kOk) return bad(e);
          return finish(Kind::kExited, proto::shell_status(ex), {}, true);
        }
        default:
          return bad(proto::ProtoError::kWrongType);
      }
    case Phase::kFinishing:
      return;
  }
}

void ExecSession::read_stdin() {
  std::vector<uint8_t> buf(kStdinChunk);
  const ssize_t n = ::read(io_.in, buf.data(), buf.size());
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {  // EOF, or an error such as EIO from a hung-up terminal: end of input either way
    stdin_open_ = false;
    queue(proto::StdinEof{});
    return;
  }
  std::span<const uint8_t> data(buf.data(), static_cast<size_t>(n));
  if (opts_.detach_key) {
    if (const auto it = std::ranges::find(data, *opts_.detach_key); it != data.end()) {
      proto::encode_data<proto::MsgType::kStdinData>(tx_, data.first(static_cast<size_t>(it - data.begin())));
      flush_tx();  // best effort: what was typed before the key
      return finish(Kind::kDetached, kExitOk, {}, false);
    }
  }
  if (!tx_dead_) proto::encode_data<proto::MsgType::kStdinData>(tx_, data);
}

void ExecSession::forward_signal(int signo) {
  if (phase_ == Phase::kRunning)
    queue(proto::Signal{signo});
  else if (phase_ != Phase::kFinishing)
    early_signals_.push_back(signo);  // no process to signal yet
}

void ExecSession::send_resize() {
  resize_pending_ = false;
  const auto ws = window_size(io_.tty_fd);
  if (!ws || *ws == last_size_) return;
  last_size_ = *ws;
  queue(proto::Resize{ws->rows, ws->cols});
}

void ExecSession::handle_signals() {
  while (const auto signo = io_.signals->read_one()) {
    if (*signo == SIGWINCH) {
      if (!req_.pty() || io_.tty_fd < 0) continue;
      if (phase_ == Phase::kRunning)
        send_resize();
      else
        resize_pending_ = true;
      continue;
    }
    if (*signo == SIGINT) {
      const auto now = Clock::now();
      const bool twice = last_sigint_ && now - *last_sigint_ < opts_.interrupt_window;
      last_sigint_ = now;
      if (twice) {
        forward_signal(SIGINT);
        flush_tx();
        return finish(Kind::kInterrupted, kExitSignalBase + SIGINT,
                      "interrupted twice: closed the connection without waiting for the command", false);
      }
    }
    forward_signal(*signo);
  }
}

void ExecSession::handle_writer() {
  writer_.ack();
  for (const auto& f : writer_.take_failures()) {
    if (f.error == EPIPE) {
      // Like a local pipeline: the reader went away, so the writer should die
      // of SIGPIPE; the command's status then tells how it ended.
      if (!sigpipe_forwarded_ && phase_ == Phase::kRunning) {
        sigpipe_forwarded_ = true;
        queue(proto::Signal{SIGPIPE});
      }
      continue;
    }
    const char* name = f.fd == io_.out ? "stdout" : f.fd == io_.err ? "stderr" : "output";
    if (phase_ != Phase::kFinishing || result_.kind == Kind::kExited)
      finish(Kind::kFailed, kExitConnection, fmt::format("writing to {}: {}", name, std::strerror(f.error)), false);
  }
}

SessionResult ExecSession::run() {
  const int fl = ::fcntl(sock_, F_GETFL);
  if (fl < 0 || ::fcntl(sock_, F_SETFL, fl | O_NONBLOCK) != 0) throw_errno("fcntl(O_NONBLOCK) on the agent socket");
  queue(proto::Hello{});

  enum { kSock, kStdin, kWriter, kSignals, kCount };
  while (!done()) {
    const bool active = phase_ != Phase::kFinishing;
    const bool want_read = active && writer_.pending() < kMaxPendingOutput;
    const bool want_send = active && tx_pending() > 0 && !tx_dead_;
    const bool want_stdin = phase_ == Phase::kRunning && stdin_open_ && tx_pending() < kMaxPendingSend;
    pollfd p[kCount] = {};
    // fd -1 for an fd we do not want: a hung-up socket would report POLLHUP
    // even with no events requested and spin the loop.
    const short sock_events = static_cast<short>((want_read ? POLLIN : 0) | (want_send ? POLLOUT : 0));
    p[kSock] = {sock_events ? sock_ : -1, sock_events, 0};
    p[kStdin] = {want_stdin ? io_.in : -1, POLLIN, 0};
    p[kWriter] = {writer_.notify_fd(), POLLIN, 0};
    p[kSignals] = {io_.signals ? io_.signals->fd() : -1, POLLIN, 0};
    if (::poll(p, kCount, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (p[kSignals].revents) handle_signals();
    if (p[kWriter].revents) handle_writer();
    if (phase_ == Phase::kFinishing) continue;
    if (p[kSock].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (want_read) read_socket();
    }
    if (p[kStdin].revents && phase_ == Phase::kRunning && stdin_open_) {
      if (p[kStdin].revents & POLLNVAL) {
        stdin_open_ = false;
        queue(proto::StdinEof{});
      } else {
        read_stdin();
      }
    }
    if (phase_ != Phase::kFinishing) flush_tx();
  }
  return result_;
}

}  // namespace

SessionResult run_exec_session(int conn, const proto::ExecRequest& request, const SessionIo& io,
                               const SessionOptions& options) {
  ExecSession s(conn, request, io, options);
  return s.run();
}

}  // namespace ksbox::cli
