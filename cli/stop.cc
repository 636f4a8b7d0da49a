#include "cli/stop.h"

#include <cerrno>
#include <thread>

#include <fmt/format.h>

#include "cli/frame_io.h"
#include "protocol/exec_protocol.h"
#include "vmm/error.h"

namespace ksbox::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string seconds(std::chrono::milliseconds ms) {
  return fmt::format("{:g} s", std::chrono::duration<double>(ms).count());
}

}  // namespace

void stop_vm(const StopOptions& opts) {
  const auto deadline = Clock::now() + opts.timeout;
  ConnectPolicy policy;
  policy.timeout = opts.timeout;
  policy.retry_unreachable_socket = false;
  UniqueFd conn = vsock_connect(opts.address, policy);

  FrameReader reader(conn.get());
  try {
    client_hello(conn.get(), reader, deadline);
    send_message(conn.get(), protocol::Shutdown{}, deadline);
    // The agent may say nothing more; it powers off, which closes the stream.
    while (reader.next(deadline)) {
    }
  } catch (const Error& e) {
    throw Error(fmt::format("stopping the VM at {}: {}", opts.address.socket_path, e.what()));
  }
  conn.reset();

  // The VMM keeps accepting (and refusing the handshake) until it exits.
  auto backoff = std::chrono::milliseconds(5);
  for (;;) {
    const UnixConnectResult r = unix_connect(opts.address.socket_path);
    if (r.error == ENOENT || r.error == ECONNREFUSED) return;
    if (Clock::now() >= deadline)
      throw Error(fmt::format("the VM at {} shut down its agent but did not exit within {}",
                              opts.address.socket_path, seconds(opts.timeout)));
    std::this_thread::sleep_until(std::min(deadline, Clock::now() + backoff));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
  }
}

}  // namespace ksbox::cli
