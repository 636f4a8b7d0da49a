#include "cli/sandbox_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vmm/atomic_file.h"
#include "cli/host_checks.h"
#include "vmm/error.h"

namespace ksbox::cli {

using nlohmann::json;

SandboxPaths sandbox_paths(const std::string& name) { return {state_dir() / name}; }

SandboxRecord read_record(const SandboxPaths& p) {
  std::ifstream in(p.record());
  if (!in) throw Error(fmt::format("{}: cannot read: {}", p.record().string(), std::strerror(errno)));
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  try {
    if (!j.is_object()) throw Error("not a JSON object");
    SandboxRecord r;
    r.name = j.at("name").get<std::string>();
    r.project = j.at("project").get<std::string>();
    r.workspace_mode = j.at("workspace").get<std::string>();
    r.memory_mib = j.at("memory_mib").get<uint64_t>();
    r.vcpus = j.at("vcpus").get<unsigned>();
    r.network = j.at("network").get<std::string>();
    r.sync_mode = j.at("sync_mode").get<std::string>();
    r.created_unix = j.at("created_unix").get<int64_t>();
    if (r.workspace_mode != "clone" && r.workspace_mode != "live") throw Error("bad workspace mode");
    // Records from before the root disk have neither.
    r.image = j.value("image", std::string());
    if (const auto l = j.find("layer"); l != j.end() && !l->is_null())
      r.layer = LayerRecord{l->at("size").get<uint64_t>(), l->at("base_uuid").get<std::string>(),
                            l->at("base_size").get<uint64_t>(), l->at("base_fingerprint").get<std::string>(),
                            l->at("base_path").get<std::string>()};
    return r;
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: malformed ({}); `ksbox destroy --force {}` removes it", p.record().string(),
                            e.what(), p.dir.filename().string()));
  }
}

void write_record(const SandboxPaths& p, const SandboxRecord& r) {
  json j = {{"name", r.name},
                  {"project", r.project.string()},
                  {"workspace", r.workspace_mode},
                  {"memory_mib", r.memory_mib},
                  {"vcpus", r.vcpus},
                  {"network", r.network},
                  {"sync_mode", r.sync_mode},
                  {"created_unix", r.created_unix},
                  {"image", r.image}};
  if (r.layer)
    j["layer"] = {{"size", r.layer->size},
                  {"base_uuid", r.layer->base_uuid},
                  {"base_size", r.layer->base_size},
                  {"base_fingerprint", r.layer->base_fingerprint},
                  {"base_path", r.layer->base_path.string()}};
  write_file_atomic(p.record(), j.dump(2) + "\n", 0600);
}

std::vector<std::string> list_sandbox_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_dir(), ec))
    if (e.is_directory(ec) && fs::exists(e.path() / "sandbox.json", ec)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<UniqueFd> try_lock(const SandboxPaths& p) {
  UniqueFd fd(::open(p.lock().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) throw_errno("cannot open " + p.lock().string());
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return fd;
  if (errno == EWOULDBLOCK) return std::nullopt;
  throw_errno("flock " + p.lock().string());
}

std::optional<fs::path> find_git_root(const fs::path& start) {
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::absolute(start), ec);
  if (ec || !fs::is_directory(dir, ec)) return std::nullopt;
  for (;;) {
    if (fs::exists(dir / ".git", ec)) return dir;
    if (dir == dir.root_path()) return std::nullopt;
    dir = dir.parent_path();
  }
}

}  // namespace ksbox::cli
