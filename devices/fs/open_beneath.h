// The one way the passthrough opens a name: a single component under a
// directory fd, with no "..", symlink or magic link able to lead out.
#pragma once

#include <cstdint>
#include <string_view>

#include "vmm/unique_fd.h"

namespace ksbox::devices::fs {

// openat2(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC) with RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, or the same openat where
// `name` is a single component (valid_name()) or "."; invalid with errno set
// on failure. A symlink as `name` with O_PATH gives the link itself.
UniqueFd open_beneath(int dirfd, std::string_view name, int flags, uint32_t mode = 0);

}  // namespace ksbox::devices::fs
