// Where the agent listens: vsock:PORT in the guest (any CID), unix:PATH for
// host-side tests (unix:@NAME is an abstract socket, which crosses mount
// namespaces).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vmm/unique_fd.h"

namespace ksbox::agent {

struct ListenAddress {
  enum class Kind { kVsock, kUnix };
  Kind kind = Kind::kVsock;
  uint32_t port = 1024;
  std::string path;
  // For the ready line: "vsock port 1024" or "unix:PATH".
  std::string describe() const;
};

// "vsock:PORT" or "unix:PATH"; nullopt if malformed.
std::optional<ListenAddress> parse_listen_address(std::string_view spec);

// A non-blocking, close-on-exec listening socket. A stale socket file at a
// unix path is replaced. Throws Error.
UniqueFd listen_on(const ListenAddress& addr);

}  // namespace ksbox::agent
