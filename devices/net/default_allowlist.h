// The names `--network filtered` allows out of the box: what the agent CLIs
// in the guest need to reach their own APIs, the common package registries
// and the git hosts. Suffix match on label boundaries, so "github.com" also
// allows "api.github.com" and "codeload.github.com". ksbox-vmm's --allow adds
// to this list; --no-default-allow starts from an empty one. README.md
// lists it too: keep both in step.
#pragma once

#include <array>
#include <string_view>

namespace ksbox::devices::net {

inline constexpr std::array<std::string_view, 21> kDefaultAllowlist = {
    // The agents' APIs: Claude Code, Gemini CLI, Codex.
    "api.anthropic.com", "anthropic.com", "claude.ai", "generativelanguage.googleapis.com", "googleapis.com",
    "api.openai.com", "openai.com", "chatgpt.com",
    // Package registries: npm, PyPI, Debian, crates.io, the Go module proxy.
    "registry.npmjs.org", "npmjs.org", "pypi.org", "files.pythonhosted.org", "deb.debian.org", "security.debian.org",
    "crates.io", "static.crates.io", "proxy.golang.org",
    // Git hosts.
    "github.com", "githubusercontent.com", "gitlab.com", "bitbucket.org"};

}  // namespace ksbox::devices::net
