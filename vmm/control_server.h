// ksbox-vmm's control socket (--control PATH): one JSON request per
// connection, one JSON reply. The ksbox CLI uses it to tell that a pid is
// really this sandbox's VMM (no PID-reuse mistakes) and to power it off.
//   {"cmd":"status"} -> {"ok":true,"pid":..,"name":..,"state":"running",...}
//   {"cmd":"stop"}   -> {"ok":true}, then the VMM exits 0 (a hard power-off)
//   {"cmd":"pause","lease_ms":N} -> {"ok":true} once every vCPU is stopped;
//                      they run again at "resume" or when the lease ends
//   {"cmd":"resume"} -> {"ok":true}
//   {"cmd":"balloon"[,"target_mib":N]} -> see balloon_control.h
//   {"cmd":"fs"}     -> the shares' FUSE request counts, see fs_stats_control.h
//   {"cmd":"net"}    -> the network device's frame counts, see net_stats_control.h
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/vm_control.h"

namespace ksbox {

namespace devices::balloon {
class VirtioBalloon;
}
namespace devices::fs {
class VirtioFs;
}
namespace devices::net {
class VirtioNet;
}
namespace devices::virtio {
class MmioTransport;
}

struct ControlInfo {
  std::string name;  // --name, may be empty
  unsigned vcpus = 0;
  uint64_t memory_mib = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  devices::balloon::VirtioBalloon* balloon = nullptr;  // outlives the server; nullptr: none
  std::vector<devices::fs::VirtioFs*> shares;           // outlive the server
  devices::net::VirtioNet* net = nullptr;               // outlives the server; nullptr: --network off
  std::vector<const devices::virtio::MmioTransport*> transports;  // in slot order; outlive the server
};

inline constexpr size_t kMaxControlRequest = 4096;  // bytes, '\n' included
inline constexpr std::chrono::milliseconds kDefaultPauseLease{10'000};
inline constexpr std::chrono::milliseconds kMaxPauseLease{300'000};

// Answers one request line (without its '\n'); asks `ctl` to stop for
// "stop". Never throws: malformed requests get {"ok":false,"error":...}.
std::string handle_control_request(std::string_view line, const ControlInfo& info, VmControl& ctl);

// Serves the socket at `path` (mode 0600; a stale one is replaced) on a
// thread of its own until destroyed; the destructor removes the socket.
class ControlServer {
 public:
  ControlServer(std::string path, ControlInfo info, VmControl& ctl);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ksbox
