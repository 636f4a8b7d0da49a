#include "devices/legacy/i8042.h"

#include <algorithm>

namespace ksbox::devices {

void I8042::read(uint64_t, std::span<uint8_t> data) {
  // No data waiting, input buffer empty: Linux's kb_wait() sees a ready controller.
  std::fill(data.begin(), data.end(), 0);
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == kCommandPort - kDataPort && !data.empty() && data[0] == kCmdResetCpu) on_reset_();
}

}  // namespace ksbox::devices
