// Where a virtio-net device's frames go: the device and the network behind
// it meet at whole Ethernet frames (no virtio header, checksums complete).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ksbox::devices::net {

// Implemented by the device; the backend calls it from its own thread.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A frame for the guest. Copied before returning; dropped (and counted by
  // the device) when the guest has no room for it and the device's own
  // backlog is full.
  virtual void receive_frame(std::span<const uint8_t> frame) = 0;
  // can_send() turned true again after being false.
  virtual void backend_writable() = 0;
};

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  // Starts delivering frames to `sink` (called once, before any send). The
  // backend stops calling the sink in its destructor.
  virtual void start(FrameSink& sink) = 0;
  // Whether send_frame() would take a frame now. When it says no, the
  // device leaves the guest's frames in the TX ring until backend_writable().
  virtual bool can_send() = 0;
  // A frame from the guest (copied before returning). Callable from any
  // thread; frames of one caller go out in order.
  virtual void send_frame(std::span<const uint8_t> frame) = 0;
  // The backend's own counters by name (what it refused, dropped or
  // answered), for the control socket; a backend wrapping another lists
  // the inner one's too. Callable from any thread.
  virtual std::vector<std::pair<std::string, uint64_t>> counters() const { return {}; }
};

}  // namespace ksbox::devices::net
