#include "devices/fs/io_engine_factory.h"

#include <fmt/format.h>

#include "devices/fs/io_uring_engine.h"
#include "vmm/error.h"

namespace ksbox::devices::fs {

IoEngineKind parse_io_engine_kind(std::string_view name) {
  for (IoEngineKind k : {IoEngineKind::kAuto, IoEngineKind::kIoUring, IoEngineKind::kSync})
    if (name == io_engine_kind_name(k)) return k;
  throw Error(fmt::format("unknown fs I/O engine \"{}\": valid values are auto, io_uring, sync", name));
}

std::string_view io_engine_kind_name(IoEngineKind kind) {
  switch (kind) {
    case IoEngineKind::kSync:
      return "sync";
    case IoEngineKind::kIoUring:
      return "io_uring";
    case IoEngineKind::kAuto:
      break;
  }
  return "auto";
}

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
