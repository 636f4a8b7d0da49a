// ksbox-vmm's pid file (--pid-file): {"pid":N,"starttime":T} where T is
// field 22 of /proc/PID/stat, so that a reader can tell this process from a
// later one that got the same pid. Written at start (atomically), removed
// when the VMM ends cleanly, left behind when the guest crashed: a pid file
// without a live VMM means "crashed".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

namespace ksbox {

struct PidRecord {
  pid_t pid = 0;
  uint64_t starttime = 0;
};

// Field 22 of /proc/<pid>/stat (clock ticks after boot); nullopt when the
// process does not exist.
std::optional<uint64_t> process_starttime(pid_t pid);
// The record in `path`; nullopt if missing or malformed.
std::optional<PidRecord> read_pid_file(const std::string& path);

class PidFile {
 public:
  // Throws Error when the file cannot be written.
  explicit PidFile(std::string path);
  ~PidFile();
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;
  // Leave the file behind at exit (the guest crashed).
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

}  // namespace ksbox
