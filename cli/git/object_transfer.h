// Copies the commits reachable from the clone's tip that the project lacks,
// with their trees and blobs, from the clone's object database into the
// project's. Each object is re-hashed on write and must keep its id; trees
// are checked for entry names git itself refuses (".git", "..", "/", dups);
// objects larger than kMaxObjectBytes are refused. Objects are written
// children-first (blobs, then subtrees, then the tree; parents before
// commits), so an interrupted transfer never leaves a commit without its
// history.
#pragma once

#include <git2.h>

#include <cstddef>

namespace ksbox::git {

inline constexpr size_t kMaxObjectBytes = size_t{1} << 30;

// Returns the number of objects written.
size_t transfer_objects(git_repository* clone, git_repository* project, const git_oid& tip);

}  // namespace ksbox::git
