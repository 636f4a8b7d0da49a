// `sync --artifacts`: copies build outputs (dist/, build/, target/, .next/,
// out/) from the clone's work tree into the project directory. The source is
// guest-written: walked with openat(O_NOFOLLOW) from the clone root, only
// regular files and directories are copied; symlinks, FIFOs, devices and
// sockets are skipped and reported. Files land via a temporary + rename, so a
// symlink already in the project's artifact tree is replaced, not followed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ksbox::git {

inline const std::vector<std::string> kArtifactDirs = {"dist", "build", "target", ".next", "out"};

struct ArtifactDir {
  std::string dir;
  uint64_t files = 0;
  uint64_t bytes = 0;
};
struct SkippedArtifact {
  std::string path;
  std::string reason;  // "symlink", "special file", "not a directory in the project", "error: ..."
};
inline constexpr size_t kMaxListedSkips = 1000;
struct ArtifactReport {
  std::vector<ArtifactDir> copied;
  std::vector<SkippedArtifact> skipped;  // the first kMaxListedSkips
  size_t skipped_count = 0;
};

// Copies the artifact dirs that exist in `clone_root` into `project_root`
// (merging into existing directories, overwriting files).
ArtifactReport copy_artifacts(const std::string& clone_root, const std::string& project_root);

// The artifact dirs present in the clone (for --dry-run).
std::vector<std::string> present_artifact_dirs(const std::string& clone_root);

}  // namespace ksbox::git
