// Running a helper program (ksbox-git, hooks use their own) and waiting for it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ksbox::cli {

// Runs `tool` with `args` (after argv[0]), stdin /dev/null, our stdout and
// stderr, and returns its exit status (128+N when killed by signal N).
// `stdout_to_stderr` keeps our stdout for the guest command's output.
// Throws Error when it cannot be started.
int run_tool(const std::filesystem::path& tool, const std::vector<std::string>& args, bool stdout_to_stderr = false);

// The same with stdout captured (up to 1 MiB) and stderr discarded.
struct ToolOutput {
  int status = 0;
  std::string out;
};
ToolOutput run_tool_capture(const std::filesystem::path& tool, const std::vector<std::string>& args);

}  // namespace ksbox::cli
