// File-system access inside a directory tree written by the (hostile) guest:
// every path is walked one component at a time with openat(O_NOFOLLOW), so a
// symlink planted anywhere on the way can never lead outside the tree, and
// reads are bounded.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/unique_fd.h"

namespace ksbox::git {

// Splits a relative path into components; nullopt if it is absolute, empty, or
// has an empty, ".", ".." or ".git" (any case) component.
std::optional<std::vector<std::string>> split_relative_path(std::string_view path);

// Opens `path` as a directory, O_RDONLY, O_NOFOLLOW|O_DIRECTORY per component.
UniqueFd open_directory(const std::string& path);
// Opens the directory `components` below `dirfd`; invalid fd (errno set) if
// any component is missing, not a directory, or a symlink.
UniqueFd open_subdirectory(int dirfd, const std::vector<std::string>& components);

enum class EntryKind { kMissing, kRegular, kDirectory, kSymlink, kOther };
struct Entry {
  EntryKind kind = EntryKind::kMissing;
  struct stat st {};
};
// fstatat(AT_SYMLINK_NOFOLLOW); kMissing on ENOENT/ENOTDIR.
Entry stat_entry(int dirfd, const std::string& name);

// Reads the regular file `name` in `dirfd` (not following a symlink, not
// blocking on a FIFO swapped in after a check). nullopt if it is not a
// regular file or is larger than `limit` (errno = EFBIG).
std::optional<std::string> read_regular_file(int dirfd, const std::string& name, size_t limit,
                                             struct stat* st_out = nullptr);
// The same, following a symlink `name` (for screening what an unconfined
// libgit2 would read through it).
std::optional<std::string> read_regular_file_followed(int dirfd, const std::string& name, size_t limit);

// readlinkat, bounded by PATH_MAX.
std::optional<std::string> read_symlink(int dirfd, const std::string& name);

}  // namespace ksbox::git
