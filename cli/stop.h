// `ksbox stop`: ask the agent to power the VM off and wait until it is gone.
// Addressed by the VMM's vsock socket, so that the sandbox-store `stop NAME`
// can resolve a name to a socket and reuse this.
#pragma once

#include <chrono>

#include "cli/vsock_connect.h"

namespace ksbox::cli {

struct StopOptions {
  VsockAddress address;
  std::chrono::milliseconds timeout{30'000};  // for the whole operation
};

// Connects (retrying a refused handshake while the guest boots, but failing
// at once if nothing listens on the socket), exchanges Hello, sends
// Shutdown, waits for the agent to close the connection, then waits until
// the socket stops accepting connections (ECONNREFUSED or ENOENT): the VMM
// has exited. Throws Error with a user-facing message on any failure or at
// the timeout.
void stop_vm(const StopOptions& opts);

}  // namespace ksbox::cli
