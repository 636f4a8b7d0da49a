// Project hooks (.ksbox.json "hooks"): host commands run around a sandbox's
// start and stop. A hook is a convenience, never a gate: one that fails is
// reported and the next one runs.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox::cli {

// Runs each command with `/bin/sh -c COMMAND` in `project_dir`, one after
// the other, waiting for each: stdin is /dev/null, stdout and stderr are
// ours, the environment is ours plus `extra_env` ("NAME=VALUE", replacing
// our value of NAME; e.g. KSBOX_SANDBOX=<name>), with default signal
// dispositions and an empty signal mask (whatever the caller blocked for
// its signalfd). A hook that exits non-zero, is killed, or cannot be
// started is reported on stderr as
//   ksbox: warning: pre-up hook 'CMD' exited 3; continuing
// (`phase` is the word used there). Returns how many failed.
size_t run_hooks(std::string_view phase, const std::vector<std::string>& commands,
                 const std::filesystem::path& project_dir, const std::vector<std::string>& extra_env);

}  // namespace ksbox::cli
