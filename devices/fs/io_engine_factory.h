// Picks the file data engine at run time: io_uring where the kernel allows
// it, the synchronous engine otherwise (or on request).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "devices/fs/io_engine.h"

namespace ksbox::devices::fs {

enum class IoEngineKind { kSync, kIoUring, kAuto };

// "auto", "io_uring" or "sync"; throws ksbox::Error naming the valid values.
IoEngineKind parse_io_engine_kind(std::string_view name);
std::string_view io_engine_kind_name(IoEngineKind kind);

// kIoUring throws ksbox::Error (why, and what to do) if io_uring cannot be
// used. kAuto falls back to SyncIoEngine then, and puts the reason in
// `*why_fallback` (cleared when there was no fallback).
std::unique_ptr<IoEngine> make_io_engine(IoEngineKind kind, std::string* why_fallback = nullptr);

}  // namespace ksbox::devices::fs
