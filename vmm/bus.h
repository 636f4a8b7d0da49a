// Port-I/O and MMIO address spaces that devices register on. vCPU threads
// dispatch exits here; devices serialise their own state.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

namespace ksbox {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `offset` is relative to the registered base; `data.size()` is 1, 2, 4 or 8.
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Throws Error when [base, base+len) overlaps a registered range or wraps.
  void add(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> dev);

  // Returns false when nothing is mapped there: reads then see all ones
  // (an empty ISA bus), writes are dropped. Unmapped accesses are counted.
  bool read(uint64_t addr, std::span<uint8_t> data);
  bool write(uint64_t addr, std::span<const uint8_t> data);

  uint64_t unhandled() const { return unhandled_.load(std::memory_order_relaxed); }

 private:
  struct Range {
    uint64_t len;
    std::shared_ptr<BusDevice> dev;
  };
  // Device and offset for an access that lies wholly inside one range.
  std::pair<BusDevice*, uint64_t> find(uint64_t addr, uint64_t len) const;

  std::string name_;
  std::map<uint64_t, Range> ranges_;  // by base; frozen once vCPUs run
  std::atomic<uint64_t> unhandled_{0};
};

}  // namespace ksbox
