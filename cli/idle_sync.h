// The auto-idle sync mode: a small watcher process per sandbox that syncs
// (auto-commit + fast-forward) once the workspace has been quiet for the
// config's idle_seconds. It runs detached, ends with the VMM, and keeps a
// pid file (idle-sync.pid) so stop and destroy can end it too.
#pragma once

#include <string>

#include "cli/sandbox_store.h"

namespace ksbox::cli {

inline constexpr const char* kIdleSyncCommand = "__idle-sync";  // hidden subcommand

// Starts `ksbox __idle-sync NAME` detached; output to logs/sync.log.
void spawn_idle_sync(const SandboxPaths& p, const std::string& name);
// The watcher's body; returns when the sandbox's VMM is gone.
int idle_sync_main(const std::string& name);
// Ends the watcher, if one runs, and waits for it (up to 2 s).
void stop_idle_sync(const SandboxPaths& p);

}  // namespace ksbox::cli
