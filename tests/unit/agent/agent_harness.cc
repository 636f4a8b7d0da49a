#include "agent_harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#ifndef KSBOX_AGENT_PATH
#error "KSBOX_AGENT_PATH must name the ksbox-agent binary"
#endif

namespace ksbox::agent_test {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ksbox-agent-test.XXXXXX";
  if (!::mkdtemp(tmpl.data())) fail("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

AgentProcess::AgentProcess(std::vector<std::string> extra_args)
    : AgentProcess({}, "", std::move(extra_args)) {}

AgentProcess::AgentProcess(std::vector<std::string> prefix, std::string listen, std::vector<std::string> extra_args) {
  socket_ = listen.empty() ? dir() + "/a.sock" : listen;
  std::vector<std::string> args = std::move(prefix);
  // KSBOX_AGENT_BINARY overrides the built one (e.g. a sanitizer build).
  const char* override_path = std::getenv("KSBOX_AGENT_BINARY");
  args.push_back(override_path && *override_path ? override_path : KSBOX_AGENT_PATH);
  args.push_back("--listen");
  args.push_back("unix:" + socket_);
  for (auto& a : extra_args) args.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = dir() + "/agent.log";
  UniqueFd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!log_fd) fail("open " + log_path);
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) fail("fork");
  if (pid_ == 0) {
    // Async-signal-safe calls only: the test process may have threads.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_fd.get(), 0);
    ::dup2(log_fd.get(), 1);
    ::dup2(log_fd.get(), 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (log().find("ksbox-agent: ready on") == std::string::npos) {
    if (!alive() || std::chrono::steady_clock::now() > deadline) {
      stop();
      throw std::runtime_error("ksbox-agent did not get ready; its log:\n" + log());
    }
    std::this_thread::sleep_for(5ms);
  }
}

AgentProcess::~AgentProcess() { stop(); }

void AgentProcess::stop() {
  if (!alive()) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  if (alive()) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

std::string AgentProcess::log() const { return read_file(dir() + "/agent.log"); }

bool AgentProcess::alive() {
  if (exit_status_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    exit_status_ = st;
    return false;
  }
  return r == 0;
}

namespace {

// (pid, state, ppid) of every process in /proc.
struct ProcStat {
  pid_t pid;
  char state;
  pid_t ppid;
};
std::vector<ProcStat> all_processes() {
  std::vector<ProcStat> procs;
  DIR* d = ::opendir("/proc");
  if (!d) return procs;
  while (dirent* e = ::readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    // pid (comm) state ppid ...; comm may contain spaces and parentheses.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    procs.push_back({pid, state, static_cast<pid_t>(ppid)});
  }
  ::closedir(d);
  return procs;
}

}  // namespace

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& p : all_processes())
    if (p.ppid == parent) out.push_back(p.pid);
  return out;
}

std::vector<pid_t> zombies_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& p : all_processes())
    if (p.ppid == parent && p.state == 'Z') out.push_back(p.pid);
  return out;
}

TestConn::TestConn(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  if (!fd_) fail("socket");
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  socklen_t len = sizeof sa;
  if (!path.empty() && path[0] == '@') {
    sa.sun_path[0] = '\0';
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  }
  if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sa), len) < 0) fail("connect " + path);
  ::fcntl(fd_.get(), F_SETFL, O_NONBLOCK);
}

bool TestConn::pump_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<uint8_t> buf(256 << 10);
  while (!pred()) {
    if (closed || !fd_) return pred();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    if (pending_pos_ < pending_.size() && !send_failed) p.events |= POLLOUT;
    if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100))) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    if (p.revents & POLLOUT) {
      const ssize_t n =
          ::send(fd_.get(), pending_.data() + pending_pos_, pending_.size() - pending_pos_, MSG_NOSIGNAL);
      if (n > 0) {
        pending_pos_ += static_cast<size_t>(n);
        if (pending_pos_ == pending_.size()) {
          pending_.clear();
          pending_pos_ = 0;
        }
      } else if (n < 0 && errno != EAGAIN) {
        send_failed = true;  // the agent closed; keep reading what it sent
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n > 0) {
        decoder_.feed(std::span(buf.data(), static_cast<size_t>(n)));
        for (;;) {
          auto r = decoder_.next();
          if (r.status == proto::FrameDecoder::Status::kNeedMore) break;
          if (r.status == proto::FrameDecoder::Status::kError) {
            decode_failed = true;
            closed = true;
            break;
          }
          on_frame(r.frame);
        }
      } else if (n == 0 || errno != EAGAIN) {
        closed = true;
      }
    }
  }
  return true;
}

void TestConn::on_frame(const proto::Frame& f) {
  order.push_back(f.type);
  auto check = [&](proto::ProtoError e) {
    if (e != proto::ProtoError::kOk) decode_failed = true;
  };
  switch (f.type) {
    case proto::MsgType::kHello:
      check(proto::decode(f, hello.emplace()));
      break;
    case proto::MsgType::kStarted:
      check(proto::decode(f, started.emplace()));
      break;
    case proto::MsgType::kExited:
      check(proto::decode(f, exited.emplace()));
      break;
    case proto::MsgType::kError:
      check(proto::decode(f, error.emplace()));
      break;
    case proto::MsgType::kStdoutData: {
      const std::string_view data(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
      out_bytes += data.size();
      if (discard_output) {
        for (const char c : data) out_all_zero = out_all_zero && c == 0;
      } else {
        out.append(data);
      }
      if (on_stdout) on_stdout(data);
      break;
    }
    case proto::MsgType::kStderrData:
      err.append(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
      break;
    default:
      decode_failed = true;  // not something the agent sends
      break;
  }
}

bool TestConn::start_exec(const proto::ExecRequest& req, std::chrono::milliseconds timeout) {
  send(proto::Hello{});
  send(req);
  return pump_until([this] { return started.has_value(); }, timeout);
}

bool TestConn::start_exec(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  proto::ExecRequest req;
  req.argv = std::move(argv);
  return start_exec(req, timeout);
}

std::unique_ptr<TestConn> run_exec(const std::string& socket, const proto::ExecRequest& req, const ExecOptions& opts) {
  auto c = std::make_unique<TestConn>(socket);
  c->send(proto::Hello{});
  c->send(req);
  if (!opts.stdin_data.empty()) c->send_stdin(opts.stdin_data);
  if (opts.send_eof) c->send(proto::StdinEof{});
  c->pump_until_closed(opts.timeout);
  return c;
}

std::unique_ptr<TestConn> run_exec(const std::string& socket, std::vector<std::string> argv, const ExecOptions& opts) {
  proto::ExecRequest req;
  req.argv = std::move(argv);
  return run_exec(socket, req, opts);
}

bool process_running(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout, std::chrono::milliseconds poll) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(poll);
  return cond();
}

}  // namespace ksbox::agent_test
