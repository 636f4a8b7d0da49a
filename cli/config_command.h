// `ksbox init` and `ksbox config`.
#pragma once

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "cli/config.h"

namespace ksbox::cli {

// Writes <project_root>/.ksbox.json with every key at its default and the
// name (default_name_for(project_root) unless given), atomically. Refuses
// to replace an existing file unless `force`. Returns 0, or 1 with a
// message on `err`.
int run_init_command(const std::filesystem::path& project_root, bool force,
                     const std::optional<std::string>& name = std::nullopt, std::ostream& out = std::cout,
                     std::ostream& err = std::cerr);

// Prints the resolved config: memory and vCPUs as sized to this host, one
// "key  value" line each, or as JSON (to_json's keys). Returns 0, or 1 when
// the resources do not fit the host (the message on `err`).
int run_config_command(const SandboxConfig& resolved, bool json, std::ostream& out = std::cout,
                       std::ostream& err = std::cerr);

}  // namespace ksbox::cli
