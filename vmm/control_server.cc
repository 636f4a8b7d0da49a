#include "vmm/control_server.h"

#include <unistd.h>

#include <thread>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include "devices/vsock/host_socket.h"
#include "vmm/balloon_control.h"
#include "vmm/device_stats_control.h"
#include "vmm/error.h"
#include "vmm/fs_stats_control.h"
#include "vmm/net_stats_control.h"

namespace ksbox {

namespace asio = boost::asio;
using asio::local::stream_protocol;
using nlohmann::json;

std::string handle_control_request(std::string_view line, const ControlInfo& info, VmControl& ctl) {
  json reply;
  const json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  const auto cmd = req.is_object() && req.contains("cmd") && req["cmd"].is_string()
                       ? req["cmd"].get<std::string>()
                       : std::string();
  if (cmd == "status") {
    const auto up = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                          info.started);
    reply = {{"ok", true},
             {"pid", ::getpid()},
             {"name", info.name},
             {"state", ctl.stopping() ? "stopping" : "running"},
             {"uptime_ms", up.count()},
             {"vcpus", info.vcpus},
             {"memory_mib", info.memory_mib}};
  } else if (cmd == "pause") {
    // The lease: how long the guest stays paused unless resumed first.
    const auto lease = req.contains("lease_ms") && req["lease_ms"].is_number_unsigned()
                           ? std::min<uint64_t>(req["lease_ms"].get<uint64_t>(), kMaxPauseLease.count())
                           : kDefaultPauseLease.count();
    const bool parked = ctl.pause_until(VmControl::Clock::now() + std::chrono::milliseconds(lease),
                                        std::chrono::seconds(2));
    reply = {{"ok", parked}, {"lease_ms", lease}};
    if (!parked) reply["error"] = "the vCPUs did not stop in time";
  } else if (cmd == "resume") {
    ctl.resume();
    reply = {{"ok", true}};
  } else if (cmd == "balloon") {
    reply = balloon_request(req, info.balloon, info.memory_mib);
  } else if (cmd == "fs") {
    reply = fs_stats_reply(info.shares);
  } else if (cmd == "net") {
    reply = net_stats_reply(info.net);
  } else if (cmd == "devices") {
    reply = device_stats_reply(info.transports);
  } else if (cmd == "stop") {
    ctl.request_stop({kExitGuestReset, "stopped through the control socket"});
    reply = {{"ok", true}};
  } else {
    reply = {{"ok", false}, {"error", cmd.empty() ? "expected {\"cmd\": \"status\"|\"stop\"|\"pause\"|\"resume\"|\"balloon\"|\"fs\"|\"net\"|\"devices\"}" : "unknown cmd"}};
  }
  return reply.dump() + "\n";
}

namespace {

// One client: read a line, answer it, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(stream_protocol::socket s, const ControlInfo& info, VmControl& ctl)
      : socket_(std::move(s)), buf_(kMaxControlRequest), info_(info), ctl_(ctl) {}

  void start() {
    asio::async_read_until(socket_, buf_, '\n', [self = shared_from_this()](auto ec, size_t n) {
      if (ec) return;  // closed early, or a line over the limit: drop the client
      std::string line(asio::buffers_begin(self->buf_.data()), asio::buffers_begin(self->buf_.data()) + n - 1);
      self->reply_ = handle_control_request(line, self->info_, self->ctl_);
      asio::async_write(self->socket_, asio::buffer(self->reply_), [self](auto, size_t) {});
    });
  }

 private:
  stream_protocol::socket socket_;
  asio::streambuf buf_;
  std::string reply_;
  const ControlInfo& info_;
  VmControl& ctl_;
};

}  // namespace

struct ControlServer::Impl {
  Impl(std::string path, ControlInfo i, VmControl& c)
      : listener(std::move(path), "control socket"), info(std::move(i)), ctl(c), acceptor(io) {
    const int fd = ::dup(listener.fd());
    if (fd < 0) throw_errno("control socket: dup");
    acceptor.assign(stream_protocol(), fd);
    accept();
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    io.stop();
    if (thread.joinable()) thread.join();
  }

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, stream_protocol::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Session>(std::move(s), info, ctl)->start();
        accept();
        return;
      }
      // EMFILE and the like: the client waits in the backlog; try again soon.
      retry.expires_after(std::chrono::milliseconds(100));
      retry.async_wait([this](boost::system::error_code e) {
        if (!e) accept();
      });
    });
  }

  devices::vsock::UnixListener listener;  // owns the path: unlinked last
  ControlInfo info;
  VmControl& ctl;
  asio::io_context io;
  stream_protocol::acceptor acceptor;
  asio::steady_timer retry{io};
  std::thread thread;
};

ControlServer::ControlServer(std::string path, ControlInfo info, VmControl& ctl)
    : impl_(std::make_unique<Impl>(std::move(path), std::move(info), ctl)) {}

ControlServer::~ControlServer() = default;

}  // namespace ksbox
