// Host-side test harness for ksbox-agent: runs the real binary on a Unix
// socket in a fresh temp dir, and speaks the exec protocol to it.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/exec_protocol.h"
#include "vmm/unique_fd.h"

namespace ksbox::agent_test {

namespace proto = ksbox::protocol;
using namespace std::chrono_literals;

// A temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Children of parent right now, and those of them that are zombies.
std::vector<pid_t> children_of(pid_t parent);
std::vector<pid_t> zombies_of(pid_t parent);

// The agent, started with --listen unix:<tmp>/a.sock (plus extra_args) and
// its stderr in <tmp>/agent.log. The constructor returns once the agent
// printed its ready line. Always killed (SIGTERM, then SIGKILL) and reaped
// on destruction; it also dies with the test process (PR_SET_PDEATHSIG).
class AgentProcess {
 public:
  explicit AgentProcess(std::vector<std::string> extra_args = {});
  // With a command prefix (e.g. unshare ...) and a listen spec of its own.
  AgentProcess(std::vector<std::string> prefix, std::string listen, std::vector<std::string> extra_args);
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_; }
  const std::string& dir() const { return dir_.path(); }
  std::string log() const;
  // Whether the agent process is still running (not exited).
  bool alive();
  // Children of the agent that are zombies right now (state Z in /proc).
  std::vector<pid_t> zombie_children() const { return zombies_of(pid_); }
  // Its exit status, once alive() returned false.
  std::optional<int> exit_status() const { return exit_status_; }

 private:
  void stop();
  TempDir dir_;
  std::string socket_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// The whole file ("" if unreadable).
std::string read_file(const std::string& path);

// One connection to the agent, driven with poll() from the test thread.
// Everything received is decoded and collected.
class TestConn {
 public:
  // Connects to a Unix socket path ('@' prefix: abstract).
  explicit TestConn(const std::string& path);
  int fd() const { return fd_.get(); }

  template <typename M>
  void send(const M& m) {
    const auto e = proto::encode(pending_, m);
    if (e != proto::ProtoError::kOk) throw std::runtime_error(std::string("encode: ") + proto::to_string(e));
  }
  void send_raw(std::span<const uint8_t> bytes) { pending_.insert(pending_.end(), bytes.begin(), bytes.end()); }
  void send_stdin(std::span<const uint8_t> bytes) {
    proto::encode_data<proto::MsgType::kStdinData>(pending_, bytes);
  }
  void send_stdin(std::string_view text) {
    send_stdin(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  size_t unsent() const { return pending_.size() - pending_pos_; }
  // Closes our end at once (pending bytes are dropped).
  void close() { fd_.reset(); }

  // Sends what is pending and collects what arrives until pred() holds
  // (true), the connection closes or the timeout passes (false).
  bool pump_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s);
  bool pump_until_closed(std::chrono::milliseconds timeout = 10s) {
    return pump_until([this] { return closed; }, timeout);
  }
  // Hello + ExecRequest, then waits for Started (false if it did not come).
  bool start_exec(const proto::ExecRequest& req, std::chrono::milliseconds timeout = 5s);
  bool start_exec(std::vector<std::string> argv, std::chrono::milliseconds timeout = 5s);
  // The child's pid from Started (once start_exec() returned true).
  pid_t started_pid() const { return static_cast<pid_t>(started.value().pid); }

  // Collected state.
  bool closed = false;           // EOF or a connection error
  bool decode_failed = false;    // the agent sent something we cannot decode
  bool send_failed = false;      // EPIPE & co. while sending
  std::optional<proto::Hello> hello;
  std::optional<proto::Started> started;
  std::optional<proto::Exited> exited;
  std::optional<proto::ErrorMsg> error;
  std::string out;  // StdoutData, unless discard_output
  std::string err;  // StderrData
  uint64_t out_bytes = 0;
  bool out_all_zero = true;
  bool discard_output = false;
  std::vector<proto::MsgType> order;  // types in arrival order
  // Called for every StdoutData payload (after it is collected).
  std::function<void(std::string_view)> on_stdout;

 private:
  void on_frame(const proto::Frame& f);
  UniqueFd fd_;
  std::vector<uint8_t> pending_;
  size_t pending_pos_ = 0;
  proto::FrameDecoder decoder_;
};

// Hello + ExecRequest + stdin (+ StdinEof), then everything until the agent
// closes the connection.
struct ExecOptions {
  std::string stdin_data;
  bool send_eof = true;
  std::chrono::milliseconds timeout = 10s;
};
std::unique_ptr<TestConn> run_exec(const std::string& socket, const proto::ExecRequest& req,
                                   const ExecOptions& opts = {});
std::unique_ptr<TestConn> run_exec(const std::string& socket, std::vector<std::string> argv,
                                   const ExecOptions& opts = {});

// Whether /proc/<pid> exists and is not a zombie.
bool process_running(pid_t pid);

// Polls cond() every `poll` until it holds or the timeout passes; returns
// its last value.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = 10ms);
// Whether `pid` stops running (exits or becomes a zombie) within the timeout.
inline bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
  return wait_until([pid] { return !process_running(pid); }, timeout);
}

// Fixture: a fresh agent per test, whose log is printed when the test failed.
class AgentTest : public ::testing::Test {
 protected:
  explicit AgentTest(std::vector<std::string> agent_args = {}) : agent_(std::move(agent_args)) {}
  void TearDown() override {
    if (HasFailure()) std::cerr << "agent log:\n" << agent_.log();
  }
  const std::string& sock() const { return agent_.socket_path(); }
  AgentProcess agent_;
};

}  // namespace ksbox::agent_test
