// One request on a ksbox-vmm control socket (--control PATH), for e2e tests.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ksbox::test {

// Sends `request` (one JSON object; the newline is added) and returns the
// parsed reply: a discarded value when the socket does not answer JSON.
nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request);

}  // namespace ksbox::test
