// A raw disk image file opened for one virtio-blk device: the host file, its
// capacity in sectors, read-only or not, and the serial the guest sees. The
// image is locked (flock: exclusive for read-write, shared for read-only) so
// two VMs never write one image, nor one reads it while another writes.
#pragma once

#include <cstdint>
#include <string>

#include "vmm/unique_fd.h"

namespace ksbox::devices::blk {

class DiskImage {
 public:
  // Opens `path` (a regular file; O_RDONLY when `read_only`). Throws
  // ksbox::Error with an actionable message: missing, not a regular file,
  // not writable, locked by another process, bad serial.
  DiskImage(std::string path, bool read_only, std::string serial = "");

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  const std::string& serial() const { return serial_; }
  // Whole 512-byte sectors of the file when opened; a tail is not exposed.
  uint64_t capacity_sectors() const { return capacity_sectors_; }

 private:
  std::string path_;
  bool read_only_;
  std::string serial_;
  UniqueFd fd_;
  uint64_t capacity_sectors_ = 0;
};

}  // namespace ksbox::devices::blk
