#include "cli/tool_process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <fmt/format.h>

#include "vmm/error.h"
#include "vmm/unique_fd.h"

extern char** environ;

namespace ksbox::cli {

namespace {

// stdout_fd: where the tool's stdout goes (-1: ours); stderr to /dev/null when quiet.
int spawn_and_wait(const std::filesystem::path& tool, const std::vector<std::string>& args, UniqueFd* stdout_w,
                   bool quiet, std::string* captured, int read_fd) {
  const int stdout_fd = stdout_w ? stdout_w->get() : -1;
  std::vector<std::string> all{tool.string()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  if (quiet) posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  // The CLI blocks some signals for its signalfd: the tool gets a clean mask.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) throw Error(fmt::format("cannot run {}: {}", tool.string(), std::strerror(err)));
  if (read_fd >= 0) {
    stdout_w->reset();  // only the tool writes it now: EOF when it is done
    char buf[4096];
    for (ssize_t n; (n = ::read(read_fd, buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      if (captured->size() < (1u << 20)) captured->append(buf, static_cast<size_t>(n));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw_errno("waitpid");
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace

int run_tool(const std::filesystem::path& tool, const std::vector<std::string>& args, bool stdout_to_stderr) {
  UniqueFd err(stdout_to_stderr ? ::fcntl(2, F_DUPFD_CLOEXEC, 3) : -1);
  return spawn_and_wait(tool, args, stdout_to_stderr ? &err : nullptr, false, nullptr, -1);
}

ToolOutput run_tool_capture(const std::filesystem::path& tool, const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) throw_errno("pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  ToolOutput r;
  r.status = spawn_and_wait(tool, args, &write_end, true, &r.out, read_end.get());
  return r;
}

}  // namespace ksbox::cli
