// Internals shared by the config parser and the value rules.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cli/config.h"

namespace ksbox::cli {

// Called with a key path ("shares[1].tag") and what is wrong with it; throws.
using KeyErrorFn = std::function<void(const std::string& key, const std::string& problem)>;

// Every value rule of SandboxConfig, reported through `fail`.
void check_values(const SandboxConfig& config, const KeyErrorFn& fail);

// nullopt if `name` is valid, else why not.
std::optional<std::string> name_problem(std::string_view name);

// The accepted spellings, for error messages.
std::string network_mode_names();
std::string sync_mode_names();
std::string workspace_mode_names();
std::string image_kind_names();

}  // namespace ksbox::cli
