#include "cli/idle_sync.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include <fmt/format.h>

#include "cli/config.h"
#include "cli/host_checks.h"
#include "cli/tool_process.h"
#include "cli/vmm_process.h"
#include "vmm/error.h"
#include "vmm/pid_file.h"
#include "vmm/unique_fd.h"

namespace ksbox::cli {
namespace {

using Clock = std::chrono::steady_clock;

fs::path idle_pid_file(const SandboxPaths& p) { return p.dir / "idle-sync.pid"; }

// Changes anywhere in the work tree or the repository's refs and index:
// the newest mtime and the entry count (for deletions). .git/objects is
// skipped (large, and only written together with refs). The clone is the
// guest's: nothing here follows a symlink, and the walk is bounded.
std::pair<int64_t, size_t> fingerprint(const fs::path& dir) {
  int64_t newest = 0;
  size_t count = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator() && count < 500'000; it.increment(ec)) {
    if (it->path().filename() == "objects" && it->path().parent_path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    newest = std::max<int64_t>(newest, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec);
    ++count;
  }
  return {newest, count};
}

void log(const std::string& msg) {
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%FT%TZ", std::gmtime(&now));
  std::fprintf(stderr, "%s idle-sync: %s\n", when, msg.c_str());
}

}  // namespace

void spawn_idle_sync(const SandboxPaths& p, const std::string& name) {
  const fs::path self = fs::read_symlink("/proc/self/exe");
  fs::create_directories(p.logs());
  UniqueFd out(::open((p.logs() / "sync.log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!out) throw_errno("cannot open " + (p.logs() / "sync.log").string());
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid > 0) return;  // reaped by init once we exit; it outlives us
  ::setsid();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const int null = ::open("/dev/null", O_RDONLY);
  ::dup2(null, 0);
  ::dup2(out.get(), 1);
  ::dup2(out.get(), 2);
  ::execl(self.c_str(), self.c_str(), kIdleSyncCommand, name.c_str(), static_cast<char*>(nullptr));
  ::_exit(127);
}

int idle_sync_main(const std::string& name) {
  const SandboxPaths p = sandbox_paths(name);
  const SandboxRecord rec = read_record(p);
  const auto vmm = live_process(p.pid_file());
  if (!vmm) {
    log("no running VMM; nothing to watch");
    return 1;
  }
  UniqueFd vmm_fd = open_pidfd(vmm->pid);
  const auto git = find_sibling_tool("ksbox-git");
  if (!vmm_fd || !git) {
    log("cannot watch the VMM or find ksbox-git");
    return 1;
  }
  PidFile self(idle_pid_file(p).string());
  unsigned idle_s = 300;
  try {
    idle_s = load_project_config(rec.project).value_or(SandboxConfig{}).idle_seconds;
  } catch (const Error& e) {
    log(fmt::format("{}; using {} s", e.what(), idle_s));
  }
  const auto idle = std::chrono::seconds(idle_s);
  const auto period = std::clamp<std::chrono::milliseconds>(idle / 4, std::chrono::milliseconds(250),
                                                            std::chrono::milliseconds(5000));
  log(fmt::format("watching {} (quiet period {} s)", p.workspace().string(), idle_s));

  auto last = fingerprint(p.workspace());
  auto last_change = Clock::now();
  bool pending = false;  // changed since the last sync
  for (;;) {
    pollfd pf{vmm_fd.get(), POLLIN, 0};
    if (::poll(&pf, 1, static_cast<int>(period.count())) > 0) {
      log("the VMM ended");
      return 0;
    }
    const auto now_fp = fingerprint(p.workspace());
    if (now_fp != last) {
      last = now_fp;
      last_change = Clock::now();
      pending = true;
      continue;
    }
    if (!pending || Clock::now() - last_change < idle) continue;
    try {
      const int st = with_guest_paused(p, [&] {
        return run_tool(*git, {"sync", "--auto-commit", "--clone", p.workspace().string(), "--project",
                               rec.project.string()});
      });
      log(fmt::format("sync exited {}", st));
    } catch (const Error& e) {
      log(e.what());
    }
    pending = false;
    last = fingerprint(p.workspace());  // the sync's own commit is not a change
  }
}

void stop_idle_sync(const SandboxPaths& p) {
  const auto rec = live_process(idle_pid_file(p));
  if (!rec) return;
  UniqueFd fd = open_pidfd(rec->pid);
  if (!fd) return;
  ::syscall(SYS_pidfd_send_signal, fd.get(), SIGTERM, nullptr, 0);
  pollfd pf{fd.get(), POLLIN, 0};
  ::poll(&pf, 1, 2000);
  std::error_code ec;
  fs::remove(idle_pid_file(p), ec);  // SIGTERM skips its destructor
}

}  // namespace ksbox::cli
