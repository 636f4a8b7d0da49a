#include "devices/blk/disk_image.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "devices/blk/request.h"
#include "vmm/error.h"
#include "vmm/machine_config.h"

namespace ksbox::devices::blk {

DiskImage::DiskImage(std::string path, bool read_only, std::string serial)
    : path_(std::move(path)), read_only_(read_only), serial_(std::move(serial)) {
  validate_disk_serial(serial_);
  fd_.reset(::open(path_.c_str(), (read_only_ ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd_) {
    const int err = errno;
    throw Error(fmt::format("--disk '{}': cannot open{}: {}{}", path_, read_only_ ? "" : " for writing",
                            std::strerror(err), err == EACCES || err == EROFS ? " (add ':ro' for a read-only disk)" : ""));
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) < 0) throw_errno("--disk '" + path_ + "': fstat");
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("--disk '{}' is not a regular file (a raw image is needed)", path_));
  if (::flock(fd_.get(), (read_only_ ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK)
      throw Error(fmt::format("--disk '{}' is in use by another process (another VM?)", path_));
    throw_errno("--disk '" + path_ + "': flock");
  }
  capacity_sectors_ = static_cast<uint64_t>(st.st_size) / kSectorSize;
  if (capacity_sectors_ == 0)
    throw Error(fmt::format("--disk '{}' is smaller than one 512-byte sector (create it with truncate -s SIZE)", path_));
}

}  // namespace ksbox::devices::blk
