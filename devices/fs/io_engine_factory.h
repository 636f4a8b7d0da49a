// Picks the file data engine at run time: io_uring where the kernel allows
// it, the synchronous engine otherwise (or on request).
#pragma once

#include <memory>
#include <string>

#include "devices/fs/io_engine.h"
#include "devices/io/io_engine_kind.h"

namespace ksbox::devices::fs {

using io::IoEngineKind;
using io::io_engine_kind_name;
using io::parse_io_engine_kind;

// kIoUring throws ksbox::Error (why, and what to do) if io_uring cannot be
// used. kAuto falls back to SyncIoEngine then, and puts the reason in
// `*why_fallback` (cleared when there was no fallback).
std::unique_ptr<IoEngine> make_io_engine(IoEngineKind kind, std::string* why_fallback = nullptr);

}  // namespace ksbox::devices::fs
