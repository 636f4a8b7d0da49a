#include "cli/git/artifacts.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "cli/git/git_handles.h"
#include "cli/git/safe_fs.h"

namespace ksbox::git {
namespace {

constexpr int kMaxDepth = 256;

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

void add_skip(ArtifactReport& report, const std::string& path, std::string reason) {
  if (++report.skipped_count <= kMaxListedSkips) report.skipped.push_back({path, std::move(reason)});
}

class Copier {
 public:
  explicit Copier(ArtifactReport& report) : report_(report) {}

  void copy_dir(int src, int dst, const std::string& rel, ArtifactDir& stats, int depth) {
    if (depth > kMaxDepth) return skip(rel, "nested too deep");
    int dupfd = ::fcntl(src, F_DUPFD_CLOEXEC, 0);
    std::unique_ptr<DIR, DirCloser> dir(dupfd >= 0 ? ::fdopendir(dupfd) : nullptr);
    if (!dir) {
      if (dupfd >= 0) ::close(dupfd);
      return skip(rel, fmt::format("error: {}", std::strerror(errno)));
    }
    while (dirent* d = ::readdir(dir.get())) {
      std::string name = d->d_name;
      if (name == "." || name == "..") continue;
      std::string path = rel + "/" + name;
      Entry e = stat_entry(src, name);
      switch (e.kind) {
        case EntryKind::kDirectory: {
          UniqueFd sub_src(::openat(src, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          UniqueFd sub_dst = make_dir(dst, name, path);
          if (!sub_src) {
            skip(path, fmt::format("error: {}", std::strerror(errno)));
          } else if (sub_dst) {
            copy_dir(sub_src.get(), sub_dst.get(), path, stats, depth + 1);
          }
          break;
        }
        case EntryKind::kRegular:
          copy_file(src, dst, name, path, stats);
          break;
        case EntryKind::kSymlink:
          skip(path, "symlink");  // never followed: it may point at any host file
          break;
        case EntryKind::kOther:
          skip(path, "special file");
          break;
        case EntryKind::kMissing:
          break;  // removed while we walked
      }
    }
  }

  // The directory `name` in the project, created if missing; never a symlink.
  UniqueFd make_dir(int dst, const std::string& name, const std::string& path) {
    if (::mkdirat(dst, name.c_str(), 0755) != 0 && errno != EEXIST) {
      skip(path, fmt::format("error: {}", std::strerror(errno)));
      return UniqueFd();
    }
    UniqueFd fd(::openat(dst, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) skip(path, "not a directory in the project");
    return fd;
  }

 private:
  void copy_file(int src, int dst, const std::string& name, const std::string& path, ArtifactDir& stats) {
    UniqueFd in(::openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (!in || ::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return skip(path, "special file");
    std::string tmp = fmt::format(".{}.ksbox-tmp", name);
    UniqueFd out(::openat(dst, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                          (st.st_mode & 0111) ? 0755 : 0644));
    if (!out) return skip(path, fmt::format("error: {}", std::strerror(errno)));
    char buf[65536];
    uint64_t total = 0;
    while (true) {
      ssize_t n = ::read(in.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) break;
        ::unlinkat(dst, tmp.c_str(), 0);
        return skip(path, fmt::format("error: {}", std::strerror(errno)));
      }
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::write(out.get(), buf + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          ::unlinkat(dst, tmp.c_str(), 0);
          return skip(path, fmt::format("error: {}", std::strerror(errno)));
        }
        off += w;
      }
      total += static_cast<uint64_t>(n);
    }
    if (::renameat(dst, tmp.c_str(), dst, name.c_str()) != 0) {
      int err = errno;
      ::unlinkat(dst, tmp.c_str(), 0);
      return skip(path, fmt::format("error: {}", std::strerror(err)));
    }
    ++stats.files;
    stats.bytes += total;
  }

  void skip(const std::string& path, std::string reason) { add_skip(report_, path, std::move(reason)); }

  ArtifactReport& report_;
};

}  // namespace

std::vector<std::string> present_artifact_dirs(const std::string& clone_root) {
  std::vector<std::string> out;
  UniqueFd root = open_directory(clone_root);
  if (!root) return out;
  for (const auto& d : kArtifactDirs)
    if (stat_entry(root.get(), d).kind == EntryKind::kDirectory) out.push_back(d);
  return out;
}

ArtifactReport copy_artifacts(const std::string& clone_root, const std::string& project_root) {
  ArtifactReport report;
  UniqueFd src_root = open_directory(clone_root);
  if (!src_root) throw Failure(kExitError, fmt::format("cannot open {}: {}", clone_root, std::strerror(errno)));
  UniqueFd dst_root = open_directory(project_root);
  if (!dst_root) throw Failure(kExitError, fmt::format("cannot open {}: {}", project_root, std::strerror(errno)));
  Copier copier(report);
  for (const auto& d : kArtifactDirs) {
    Entry e = stat_entry(src_root.get(), d);
    if (e.kind == EntryKind::kMissing) continue;
    if (e.kind != EntryKind::kDirectory) {
      add_skip(report, d, e.kind == EntryKind::kSymlink ? "symlink" : "special file");
      continue;
    }
    UniqueFd src(::openat(src_root.get(), d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    UniqueFd dst = copier.make_dir(dst_root.get(), d, d);
    if (!src || !dst) continue;
    ArtifactDir stats{d};
    copier.copy_dir(src.get(), dst.get(), d, stats, 0);
    report.copied.push_back(stats);
  }
  return report;
}

}  // namespace ksbox::git
