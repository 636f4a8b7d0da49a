#include "cli/hooks.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>

#include <fmt/format.h>

extern char** environ;

namespace ksbox::cli {
namespace {

// Our environment with `extra` ("NAME=VALUE") replacing or adding names.
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    bool replaced = false;
    for (const auto& x : extra) replaced = replaced || name_of(x) == name_of(entry);
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// posix_spawn attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// Starts one hook; returns its pid or an errno.
int spawn_hook(const std::string& command, const std::filesystem::path& dir, const std::vector<std::string>& env,
               pid_t* pid) {
  SpawnSetup s;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setsigdefault(&s.attr, &defaults);
  posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_addopen(&s.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addchdir_np(&s.actions, dir.c_str());

  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  char sh[] = "/bin/sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, const_cast<char*>(command.c_str()), nullptr};
  // glibc's posix_spawn reports exec and file-action failures (e.g. a
  // missing directory) as its return value.
  return posix_spawn(pid, "/bin/sh", &s.actions, &s.attr, argv, envp.data());
}

// nullopt on success, else how the hook failed.
std::optional<std::string> run_one(const std::string& command, const std::filesystem::path& dir,
                                   const std::vector<std::string>& env) {
  pid_t pid = -1;
  if (const int err = spawn_hook(command, dir, env, &pid); err != 0)
    return fmt::format("could not be started in {}: {}", dir.string(), std::strerror(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fmt::format("could not be waited for: {}", std::strerror(errno));
  }
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0) return std::nullopt;
    // 127: sh could not find the command.
    if (WEXITSTATUS(status) == 127) return "exited 127 (command not found)";
    return fmt::format("exited {}", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
  return fmt::format("ended with wait status {:#x}", status);
}

}  // namespace

size_t run_hooks(std::string_view phase, const std::vector<std::string>& commands,
                 const std::filesystem::path& project_dir, const std::vector<std::string>& extra_env) {
  if (commands.empty()) return 0;
  const std::vector<std::string> env = merged_env(extra_env);
  size_t failed = 0;
  for (const auto& command : commands) {
    // Our buffered output first, so it does not appear after the hook's.
    std::fflush(stdout);
    if (const auto problem = run_one(command, project_dir, env)) {
      ++failed;
      std::fprintf(stderr, "ksbox: warning: %.*s hook '%s' %s; continuing\n", static_cast<int>(phase.size()),
                   phase.data(), command.c_str(), problem->c_str());
    }
  }
  return failed;
}

}  // namespace ksbox::cli
