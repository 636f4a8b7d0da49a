#include "vmm/mapped_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include <fmt/format.h>

#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox {

MappedFile::MappedFile(const std::string& path, const char* what, uint64_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error(fmt::format("cannot open {} '{}': {}", what, path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) throw_errno(fmt::format("stat {} '{}'", what, path));
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{} '{}' is not a regular file", what, path));
  if (st.st_size == 0) throw Error(fmt::format("{} '{}' is empty", what, path));
  if (static_cast<uint64_t>(st.st_size) > max_size)
    throw Error(fmt::format("{} '{}' is {} MiB, more than the {} MiB limit", what, path,
                            st.st_size >> 20, max_size >> 20));
  map_ = MmapRegion::readonly_file(fd.get(), static_cast<size_t>(st.st_size));
}

}  // namespace ksbox
