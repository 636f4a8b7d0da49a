// What an exec runs as and in: the user (from the request or the agent's
// default), its environment and working directory. Users come from
// /etc/passwd and /etc/group parsed here: the agent is static, and glibc's
// getpwnam & co. would need NSS modules loaded with dlopen.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox::agent {

struct PasswdEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::string shell;
};

// The first entry of passwd_path with this uid; nullopt if none or unreadable.
std::optional<PasswdEntry> find_user(uid_t uid, const std::string& passwd_path = "/etc/passwd");

// primary plus every group of group_path that lists user as a member.
std::vector<gid_t> user_groups(std::string_view user, gid_t primary, const std::string& group_path = "/etc/group");

struct ExecIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, when ids are switched
  bool switch_ids = false;    // the child must setgroups/setgid/setuid
  std::string user;           // empty if uid has no passwd entry
  std::string home;
  std::string shell;
};

// Ids from the request (protocol::kDefaultId = the agent's default user,
// which is the user the agent runs as: root in the guest). A uid without a
// gid takes the passwd primary group, or the same number if uid is unknown.
ExecIdentity resolve_identity(uint32_t req_uid, uint32_t req_gid);

// The base environment (PATH, HOME, USER, LOGNAME, SHELL, and TERM with a
// PTY) with the request's "NAME=value" entries replacing or extending it.
std::vector<std::string> build_env(const ExecIdentity& id, bool pty, const std::vector<std::string>& request_env);

inline constexpr std::string_view kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
inline constexpr std::string_view kWorkspaceDir = "/workspace";

// Directories the child tries in order: the request's cwd alone if given,
// else /workspace (if it is a directory), the user's home, then /.
std::vector<std::string> cwd_candidates(const ExecIdentity& id, const std::string& request_cwd);

}  // namespace ksbox::agent
