#include "devices/io/io_engine_kind.h"

#include <fmt/format.h>

#include "vmm/error.h"

namespace ksbox::devices::io {

IoEngineKind parse_io_engine_kind(std::string_view name) {
  for (IoEngineKind k : {IoEngineKind::kAuto, IoEngineKind::kIoUring, IoEngineKind::kSync})
    if (name == io_engine_kind_name(k)) return k;
  throw Error(fmt::format("unknown I/O engine \"{}\": valid values are auto, io_uring, sync", name));
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

}  // namespace ksbox::devices::io
