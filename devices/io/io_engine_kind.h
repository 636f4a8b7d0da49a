// Which host I/O engine a device uses, chosen at run time: io_uring where the
// kernel allows it, synchronous system calls otherwise (or on request). Shared
// by virtio-fs (--fs-io) and virtio-blk (--blk-io).
#pragma once

#include <string_view>

namespace ksbox::devices::io {

enum class IoEngineKind { kSync, kIoUring, kAuto };

// "auto", "io_uring" or "sync"; throws ksbox::Error naming the valid values.
IoEngineKind parse_io_engine_kind(std::string_view name);
std::string_view io_engine_kind_name(IoEngineKind kind);

}  // namespace ksbox::devices::io
