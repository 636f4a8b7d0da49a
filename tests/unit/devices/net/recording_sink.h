// A FrameSink for backend tests: keeps every frame a backend delivers, and
// waits for one that matches.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "devices/net/backend.h"

namespace ksbox::devices::net::testing {

class RecordingSink : public FrameSink {
 public:
  using Frame = std::vector<uint8_t>;
  void receive_frame(std::span<const uint8_t> f) override {
    std::lock_guard lock(mu);
    frames.emplace_back(f.begin(), f.end());
    cv.notify_all();
  }
  void backend_writable() override {}
  // The first frame that satisfies `pred`, waiting up to `timeout`; empty if none came.
  Frame wait_for(const std::function<bool(const Frame&)>& pred, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    Frame found;
    cv.wait_for(lock, timeout, [&] {
      for (const auto& f : frames)
        if (pred(f)) {
          found = f;
          return true;
        }
      return false;
    });
    return found;
  }
  // The first frame with EtherType `type`.
  Frame wait_for(uint16_t type, std::chrono::milliseconds timeout) {
    return wait_for([type](const Frame& f) { return f.size() >= 14 && (f[12] << 8 | f[13]) == type; }, timeout);
  }
  size_t count() {
    std::lock_guard lock(mu);
    return frames.size();
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Frame> frames;
};

}  // namespace ksbox::devices::net::testing
