#include "exec_env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "vmm/unique_fd.h"

#include "protocol/exec_protocol.h"

namespace ksbox::agent {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

template <typename T>
std::optional<T> parse_id(std::string_view s) {
  T v{};
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// The whole of a small file ("" if unreadable). Plain read(): the agent avoids
// iostreams, which would add most of a megabyte to the static binary.
std::string read_small_file(const std::string& path) {
  constexpr size_t kMax = size_t{4} << 20;
  std::string data;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return data;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || data.size() + static_cast<size_t>(n) > kMax) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::optional<PasswdEntry> find_user(uid_t uid, const std::string& passwd_path) {
  const std::string text = read_small_file(passwd_path);
  for (const std::string_view line : split(text, '\n')) {
    // name:password:uid:gid:gecos:home:shell
    const auto f = split(line, ':');
    if (f.size() != 7) continue;
    const auto u = parse_id<uid_t>(f[2]);
    const auto g = parse_id<gid_t>(f[3]);
    if (!u || !g || *u != uid) continue;
    return PasswdEntry{std::string(f[0]), *u, *g, std::string(f[5]), std::string(f[6])};
  }
  return std::nullopt;
}

std::vector<gid_t> user_groups(std::string_view user, gid_t primary, const std::string& group_path) {
  std::vector<gid_t> groups{primary};
  if (user.empty()) return groups;
  const std::string text = read_small_file(group_path);
  for (const std::string_view line : split(text, '\n')) {
    // name:password:gid:member,member
    const auto f = split(line, ':');
    if (f.size() != 4) continue;
    const auto g = parse_id<gid_t>(f[2]);
    if (!g || std::ranges::find(groups, *g) != groups.end()) continue;
    const auto members = split(f[3], ',');
    if (std::ranges::find(members, user) != members.end()) groups.push_back(*g);
  }
  return groups;
}

ExecIdentity resolve_identity(uint32_t req_uid, uint32_t req_gid) {
  using protocol::kDefaultId;
  ExecIdentity id;
  const uid_t self_uid = ::getuid();
  const gid_t self_gid = ::getgid();
  id.uid = req_uid == kDefaultId ? self_uid : static_cast<uid_t>(req_uid);
  const auto pw = find_user(id.uid);
  if (req_gid != kDefaultId) {
    id.gid = static_cast<gid_t>(req_gid);
  } else if (req_uid == kDefaultId) {
    id.gid = self_gid;
  } else {
    id.gid = pw ? pw->gid : static_cast<gid_t>(id.uid);
  }
  if (pw) {
    id.user = pw->name;
    id.home = pw->home;
    id.shell = pw->shell;
  }
  if (id.home.empty()) id.home = id.uid == 0 ? "/root" : "/";
  if (id.shell.empty()) id.shell = "/bin/sh";
  id.switch_ids = id.uid != self_uid || id.gid != self_gid;
  if (id.switch_ids) id.groups = user_groups(id.user, id.gid);
  return id;
}

std::vector<std::string> build_env(const ExecIdentity& id, bool pty, const std::vector<std::string>& request_env) {
  std::vector<std::string> env;
  env.push_back("PATH=" + std::string(kDefaultPath));
  env.push_back("HOME=" + id.home);
  if (!id.user.empty()) {
    env.push_back("USER=" + id.user);
    env.push_back("LOGNAME=" + id.user);
  }
  env.push_back("SHELL=" + id.shell);
  if (pty) env.emplace_back("TERM=xterm-256color");
  for (const auto& entry : request_env) {
    const std::string_view name = std::string_view(entry).substr(0, entry.find('=') + 1);  // "NAME="
    auto it = std::ranges::find_if(env, [&](const std::string& e) { return e.starts_with(name); });
    if (it != env.end()) {
      *it = entry;
    } else {
      env.push_back(entry);
    }
  }
  return env;
}

std::vector<std::string> cwd_candidates(const ExecIdentity& id, const std::string& request_cwd) {
  if (!request_cwd.empty()) return {request_cwd};
  std::vector<std::string> dirs;
  if (is_dir(std::string(kWorkspaceDir))) dirs.emplace_back(kWorkspaceDir);
  if (!id.home.empty() && id.home != "/") dirs.push_back(id.home);
  dirs.emplace_back("/");
  return dirs;
}

}  // namespace ksbox::agent
