// A fake VMM + ksbox-agent for the CLI tests: listens on a Unix socket in a
// temp dir, does the "CONNECT <port>\n" / "OK <port>\n" handshake (refusing
// the first N attempts by closing, as the real VMM does while the guest is
// not ready), then runs a scripted agent handler on the connection in a
// thread of its own.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "protocol/exec_protocol.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli::testing {

using Bytes = std::vector<uint8_t>;
// The bytes of a string, to send as a payload.
inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
using std::chrono::milliseconds;
inline constexpr milliseconds kIoTimeout{5000};

// A failure inside a fake's handler thread (reported with ADD_FAILURE).
struct FakeFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The agent's side of one handshaken connection. Blocking calls give up with
// FakeFailure after their timeout.
class AgentConn {
 public:
  explicit AgentConn(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

  // The next frame; nullopt when the CLI closed the connection.
  std::optional<protocol::Frame> read_frame(milliseconds timeout = kIoTimeout);
  // A frame if one is already available, else nullopt (throws at EOF).
  std::optional<protocol::Frame> try_read_frame();
  // The next frame, which must be an M.
  template <typename M>
  M expect(milliseconds timeout = kIoTimeout) {
    auto f = read_frame(timeout);
    if (!f) throw FakeFailure("connection closed while expecting message type " + std::to_string(int(M::kType)));
    M m;
    if (auto e = protocol::decode(*f, m); e != protocol::ProtoError::kOk)
      throw FakeFailure(std::string("expected message type ") + std::to_string(int(M::kType)) + ", got type " +
                        std::to_string(int(f->type)) + ": " + protocol::to_string(e));
    return m;
  }
  template <typename M>
  void send(const M& m) {
    Bytes out;
    if (protocol::encode(out, m) != protocol::ProtoError::kOk) throw FakeFailure("encode failed");
    send_raw(out);
  }
  void send_raw(std::span<const uint8_t> bytes, milliseconds timeout = kIoTimeout);
  void send_stdout(std::span<const uint8_t> bytes);
  void send_stderr(std::span<const uint8_t> bytes);

  // Hello exchange, ExecRequest, Started{pid}: returns the request.
  protocol::ExecRequest accept_exec(uint32_t pid = 42);
  void exit_with(int code) { send(protocol::Exited{protocol::Exited::kExitedNormally, code}); }
  void killed_by(int signo) { send(protocol::Exited{protocol::Exited::kKilledBySignal, signo}); }

  // StdinData up to StdinEof; frames of other types go to *others.
  Bytes read_stdin(std::vector<protocol::Frame>* others = nullptr, milliseconds timeout = kIoTimeout);
  // Reads (and drops) frames until the CLI closes; false on timeout.
  bool wait_closed(milliseconds timeout = kIoTimeout);

 private:
  // A frame already decoded, else one non-blocking recv() (its result in
  // `got`, errno intact) fed to the decoder.
  std::optional<protocol::Frame> decode_or_recv(ssize_t& got);
  UniqueFd fd_;
  protocol::FrameDecoder decoder_;
};

class FakeVmm {
 public:
  using Handler = std::function<void(AgentConn&)>;
  // refuse_first: handshakes to refuse before accepting (-1: refuse all).
  explicit FakeVmm(Handler handler, int refuse_first = 0);
  ~FakeVmm();
  FakeVmm(const FakeVmm&) = delete;
  FakeVmm& operator=(const FakeVmm&) = delete;

  const std::string& socket_path() const { return path_; }
  int refused() const { return refused_.load(); }
  int accepted() const { return accepted_.load(); }
  int probes() const { return probes_.load(); }  // connections that sent no CONNECT line
  std::string last_connect_line() const;
  // The handler threads finished (with the timeout), so results they wrote are final.
  bool wait_handlers(milliseconds timeout = kIoTimeout);
  // Closes the listening socket and unlinks it, like an exiting VMM.
  void close_listener();
  // Written right after "OK <port>\n", in the same send() call.
  void set_bytes_after_ok(Bytes b) { after_ok_ = std::move(b); }

 private:
  void accept_loop();
  void serve(UniqueFd fd);

  std::string dir_;
  std::string path_;
  Handler handler_;
  Bytes after_ok_;
  std::atomic<int> refuse_left_;
  std::atomic<int> refused_{0};
  std::atomic<int> accepted_{0};
  std::atomic<int> probes_{0};
  std::atomic<int> running_handlers_{0};
  mutable std::mutex mu_;
  std::string last_line_;
  std::vector<int> live_fds_;  // shut down in the destructor to unblock handlers
  std::vector<std::thread> handlers_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd
  std::thread acceptor_;
};

}  // namespace ksbox::cli::testing
