// `ksbox-git clone`: the sandbox's own copy of the project, which the guest
// sees at /workspace and may write freely.
#pragma once

#include <optional>
#include <string>

namespace ksbox::git {

struct CloneOptions {
  std::string project;  // any path inside the project's work tree
  std::string dest;     // must not exist, or be empty
  std::optional<std::string> name;
  std::optional<std::string> email;
};

struct CloneResult {
  std::string branch;
  std::string commit;
  std::string name;   // identity set in the clone ("" if none)
  std::string email;
};

// A fresh, non-bare clone checked out at the host's current branch. Objects
// are copied, never hard-linked: the guest writes the clone, and a hard link
// would let it change the host's object files. The whole object store is
// copied (unreachable objects too): a pack of only reachable objects through
// libgit2's transport took 80x longer (30.6 s vs 0.38 s, 56k objects). user.name/user.email come from
// the options, else the host repository's resolved config; ksbox.branch
// records the host branch. Throws Failure (kExitNotARepo if not in a repo).
CloneResult clone_project(const CloneOptions& options);

}  // namespace ksbox::git
