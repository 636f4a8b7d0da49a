#include "devices/fs/io_engine_factory.h"

#include "devices/fs/io_uring_engine.h"
#include "vmm/error.h"

namespace ksbox::devices::fs {

std::unique_ptr<IoEngine> make_io_engine(IoEngineKind kind, std::string* why_fallback) {
  if (why_fallback) why_fallback->clear();
  if (kind == IoEngineKind::kSync) return std::make_unique<SyncIoEngine>();
  if (kind == IoEngineKind::kIoUring) return std::make_unique<IoUringEngine>();
  try {
    return std::make_unique<IoUringEngine>();
  } catch (const Error& e) {
    if (why_fallback) *why_fallback = e.what();
    return std::make_unique<SyncIoEngine>();
  }
}

}  // namespace ksbox::devices::fs
