// Replacing a file so that readers (and a crash) see either the old or the
// new contents, never a mix: used for every file ksbox writes in a project
// or in its state directory, and for ksbox-vmm's pid file.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace ksbox {

// Writes `data` to a temporary file next to `path` (same directory, so the
// rename stays on one file system), fsyncs it, renames it over `path`, and
// fsyncs the directory so the rename itself survives a crash. The file gets
// `mode` (subject to the umask). Throws ksbox::Error naming the path; the
// temporary file is removed on failure.
void write_file_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode = 0644);

}  // namespace ksbox
