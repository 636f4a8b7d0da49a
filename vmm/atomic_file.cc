#include "vmm/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include <fmt/format.h>

#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox {
namespace {

void write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(fmt::format("cannot write {}", what));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Removes the temporary file unless the rename consumed it.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  // open(O_EXCL) with our own unique name rather than mkostemp(), which
  // ignores `mode` and the umask (it always creates 0600).
  static std::atomic<unsigned> counter{0};
  UniqueFd fd;
  std::string name;
  for (int attempt = 0; !fd; ++attempt) {
    name = (dir / fmt::format(".{}.tmp-{}-{}", path.filename().string(), ::getpid(), counter++)).string();
    fd = UniqueFd(::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd && (errno != EEXIST || attempt == 100))
      throw_errno(fmt::format("cannot create a temporary file in {}", dir.string()));
  }
  TempFile tmp(name);
  write_all(fd.get(), data, tmp.path());
  if (::fsync(fd.get()) < 0) throw_errno(fmt::format("cannot fsync {}", tmp.path()));
  fd.reset();
  if (::rename(tmp.path().c_str(), path.c_str()) < 0)
    throw_errno(fmt::format("cannot rename {} to {}", tmp.path(), path.string()));
  tmp.release();
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd || ::fsync(dfd.get()) < 0) throw_errno(fmt::format("cannot fsync directory {}", dir.string()));
}

}  // namespace ksbox
