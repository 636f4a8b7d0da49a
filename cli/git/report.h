// What ksbox-git prints: text for the user on stdout (and `ksbox: ...` lines
// on stderr for results that need action), or one JSON object with --json.
#pragma once

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/git/clone_project.h"
#include "cli/git/sync.h"

namespace ksbox::git {

nlohmann::json to_json(const SyncReport& r);
nlohmann::json to_json(const StatusReport& s);
nlohmann::json to_json(const AutoCommitResult& c);
nlohmann::json to_json(const CloneResult& c);

void print_sync(const SyncReport& r, FILE* out, FILE* err);
void print_status(const StatusReport& s, FILE* out);
void print_commit(const AutoCommitResult& c, FILE* out);
void print_clone(const CloneResult& c, const std::string& dest, FILE* out);

}  // namespace ksbox::git
