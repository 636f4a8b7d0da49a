#include "fake_vmm.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace ksbox::cli::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Polls fd for events until the deadline; false on timeout.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) throw FakeFailure(std::string("poll: ") + std::strerror(errno));
  }
}

}  // namespace

std::optional<protocol::Frame> AgentConn::decode_or_recv(ssize_t& got) {
  auto r = decoder_.next();
  if (r.status == protocol::FrameDecoder::Status::kFrame) return std::move(r.frame);
  if (r.status == protocol::FrameDecoder::Status::kError)
    throw FakeFailure(std::string("bad frame from the CLI: ") + protocol::to_string(r.error));
  uint8_t buf[65536];
  got = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
  if (got > 0) decoder_.feed({buf, static_cast<size_t>(got)});
  return std::nullopt;
}

std::optional<protocol::Frame> AgentConn::read_frame(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    ssize_t n = 0;
    if (auto f = decode_or_recv(n)) return f;
    if (n > 0) continue;
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      if (decoder_.buffered()) throw FakeFailure("the CLI closed in the middle of a frame");
      return std::nullopt;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw FakeFailure(std::string("recv: ") + std::strerror(errno));
    if (!wait_fd(fd_.get(), POLLIN, deadline)) throw FakeFailure("timed out waiting for a frame from the CLI");
  }
}

std::optional<protocol::Frame> AgentConn::try_read_frame() {
  for (;;) {
    ssize_t n = 0;
    if (auto f = decode_or_recv(n)) return f;
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
    throw FakeFailure("the CLI closed the connection");
  }
}

void AgentConn::send_raw(std::span<const uint8_t> bytes, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes = bytes.subspan(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!wait_fd(fd_.get(), POLLOUT, deadline)) throw FakeFailure("timed out sending to the CLI");
      continue;
    }
    throw FakeFailure(std::string("send: ") + std::strerror(errno));
  }
}

void AgentConn::send_stdout(std::span<const uint8_t> bytes) {
  Bytes out;
  protocol::encode_data<protocol::MsgType::kStdoutData>(out, bytes);
  send_raw(out);
}

void AgentConn::send_stderr(std::span<const uint8_t> bytes) {
  Bytes out;
  protocol::encode_data<protocol::MsgType::kStderrData>(out, bytes);
  send_raw(out);
}

protocol::ExecRequest AgentConn::accept_exec(uint32_t pid) {
  expect<protocol::Hello>();
  send(protocol::Hello{});
  auto req = expect<protocol::ExecRequest>();
  send(protocol::Started{pid});
  return req;
}

Bytes AgentConn::read_stdin(std::vector<protocol::Frame>* others, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Bytes data;
  for (;;) {
    auto f = read_frame(std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(deadline - Clock::now())));
    if (!f) throw FakeFailure("connection closed before StdinEof");
    if (f->type == protocol::MsgType::kStdinEof) return data;
    if (f->type == protocol::MsgType::kStdinData)
      data.insert(data.end(), f->payload.begin(), f->payload.end());
    else if (others)
      others->push_back(std::move(*f));
    else
      throw FakeFailure("unexpected message type " + std::to_string(int(f->type)) + " while reading stdin");
  }
}

bool AgentConn::wait_closed(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  try {
    while (read_frame(std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(deadline - Clock::now())))) {
    }
    return true;
  } catch (const FakeFailure&) {
    return false;
  }
}

FakeVmm::FakeVmm(Handler handler, int refuse_first) : handler_(std::move(handler)), refuse_left_(refuse_first) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ksbox-cli-test.XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  path_ = dir_ + "/vsock.sock";
  listen_fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path_.c_str(), sizeof(sa.sun_path) - 1);
  if (!listen_fd_ || ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(listen_fd_.get(), 16) != 0)
    throw std::runtime_error(std::string("fake VMM socket: ") + std::strerror(errno));
  stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  acceptor_ = std::thread([this] { accept_loop(); });
}

FakeVmm::~FakeVmm() {
  const uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof(one));
  acceptor_.join();
  {
    std::lock_guard lock(mu_);
    for (const int fd : live_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : handlers_) t.join();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string FakeVmm::last_connect_line() const {
  std::lock_guard lock(mu_);
  return last_line_;
}

bool FakeVmm::wait_handlers(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (running_handlers_.load() > 0) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

void FakeVmm::close_listener() {
  std::lock_guard lock(mu_);
  ::unlink(path_.c_str());
  ::shutdown(listen_fd_.get(), SHUT_RDWR);
}

void FakeVmm::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) {
      if (p[0].revents) return;  // listener shut down
      continue;
    }
    UniqueFd c(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) {
      if (errno == EINVAL) return;  // shut down
      continue;
    }
    const timeval tv{2, 0};  // a silent client must not wedge the acceptor
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    // The handshake line, byte by byte, as the real VMM must.
    std::string line;
    char ch = 0;
    while (line.size() < 64 && ::recv(c.get(), &ch, 1, 0) == 1 && ch != '\n') line += ch;
    {
      std::lock_guard lock(mu_);
      last_line_ = line;
    }
    if (!line.starts_with("CONNECT ")) {
      probes_.fetch_add(1);  // a bare connect (e.g. `ksbox stop` checking that we are gone)
      continue;
    }
    if (refuse_left_.load() != 0) {
      if (refuse_left_.load() > 0) refuse_left_.fetch_sub(1);
      refused_.fetch_add(1);
      continue;  // close without "OK": guest not ready
    }
    accepted_.fetch_add(1);
    Bytes ok = {'O', 'K', ' ', '7', '7', '\n'};
    ok.insert(ok.end(), after_ok_.begin(), after_ok_.end());
    (void)::send(c.get(), ok.data(), ok.size(), MSG_NOSIGNAL);
    std::lock_guard lock(mu_);
    live_fds_.push_back(c.get());
    running_handlers_.fetch_add(1);
    handlers_.emplace_back([this, fd = std::move(c)]() mutable { serve(std::move(fd)); });
  }
}

void FakeVmm::serve(UniqueFd fd) {
  const int raw = fd.get();
  AgentConn conn(std::move(fd));
  try {
    handler_(conn);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "fake agent: " << e.what();
  }
  {
    std::lock_guard lock(mu_);
    std::erase(live_fds_, raw);
  }
  running_handlers_.fetch_sub(1);
  // conn closes the socket here, after the bookkeeping: a closed fd number
  // must not stay in live_fds_ where the destructor would shut it down.
}

}  // namespace ksbox::cli::testing
