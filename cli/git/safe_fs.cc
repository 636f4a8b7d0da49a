#include "cli/git/safe_fs.h"

#include <fcntl.h>
#include <limits.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>

namespace ksbox::git {

std::optional<std::vector<std::string>> split_relative_path(std::string_view path) {
  if (path.empty() || path.front() == '/') return std::nullopt;
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string part(path.substr(start, end - start));
    if (part.empty() || part == "." || part == ".." || strcasecmp(part.c_str(), ".git") == 0) return std::nullopt;
    parts.push_back(std::move(part));
    start = end + 1;
  }
  return parts;
}

UniqueFd open_directory(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

UniqueFd open_subdirectory(int dirfd, const std::vector<std::string>& components) {
  UniqueFd current(::fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  for (const auto& c : components) {
    if (!current) return current;
    current = UniqueFd(::openat(current.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  return current;
}

Entry stat_entry(int dirfd, const std::string& name) {
  Entry e;
  if (::fstatat(dirfd, name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) return e;
  if (S_ISREG(e.st.st_mode))
    e.kind = EntryKind::kRegular;
  else if (S_ISDIR(e.st.st_mode))
    e.kind = EntryKind::kDirectory;
  else if (S_ISLNK(e.st.st_mode))
    e.kind = EntryKind::kSymlink;
  else
    e.kind = EntryKind::kOther;
  return e;
}

namespace {

std::optional<std::string> read_bounded(int dirfd, const std::string& name, size_t limit, struct stat* st_out,
                                        int follow_flag) {
  // O_NONBLOCK: a FIFO swapped in after the caller's check must not hang us.
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | follow_flag | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::nullopt;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return std::nullopt;
  }
  if (static_cast<size_t>(st.st_size) > limit) {
    errno = EFBIG;
    return std::nullopt;
  }
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  // The guest may grow the file meanwhile: read what fstat promised, plus
  // nothing beyond the limit.
  while (true) {
    if (done == data.size()) {
      if (data.size() >= limit) break;
      data.resize(std::min(limit, data.size() + 65536));
    }
    ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done == limit && done == data.size()) {
    char extra;
    if (::read(fd.get(), &extra, 1) > 0) {
      errno = EFBIG;
      return std::nullopt;
    }
  }
  data.resize(done);
  if (st_out != nullptr) *st_out = st;
  return data;
}

}  // namespace

std::optional<std::string> read_regular_file(int dirfd, const std::string& name, size_t limit, struct stat* st_out) {
  return read_bounded(dirfd, name, limit, st_out, O_NOFOLLOW);
}

std::optional<std::string> read_regular_file_followed(int dirfd, const std::string& name, size_t limit) {
  return read_bounded(dirfd, name, limit, nullptr, 0);
}

std::optional<std::string> read_symlink(int dirfd, const std::string& name) {
  std::string target(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
  if (n < 0 || static_cast<size_t>(n) >= target.size()) return std::nullopt;
  target.resize(static_cast<size_t>(n));
  return target;
}

}  // namespace ksbox::git
