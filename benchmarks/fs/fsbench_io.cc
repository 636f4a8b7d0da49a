// fsbench_io: the two things benchmarks/fs/run-guest needs that busybox has
// no applet for. Static, so the same binary runs in the guest (from its
// tmpfs) and natively in L1.
//
//   fsbench_io now                        CLOCK_MONOTONIC in nanoseconds
//                                         (busybox date has no %N)
//   fsbench_io rand read|write FILE OPS   OPS buffered 4 KiB preads (or pwrites)
//                                         at 4 KiB-aligned offsets spread over
//                                         FILE by a fixed-seed generator; a
//                                         write pass ends with one fsync
//
// Random I/O is one thread, one request in flight: it measures the round trip
// of a single 4 KiB request, not a device's parallel capacity.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace {

constexpr size_t kBlock = 4096;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fsbench_io: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

int rand_io(bool write, const char* path, unsigned long ops) {
  const int fd = ::open(path, write ? O_RDWR : O_RDONLY);
  if (fd < 0) die("open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) die("fstat");
  const uint64_t blocks = static_cast<uint64_t>(st.st_size) / kBlock;
  if (blocks == 0) {
    errno = EINVAL;
    die("file smaller than one block");
  }
  alignas(kBlock) static char buf[kBlock];
  std::memset(buf, 'x', sizeof buf);
  uint64_t x = 0x9e3779b97f4a7c15ULL;  // xorshift64: same offsets on every side
  for (unsigned long i = 0; i < ops; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const off_t off = static_cast<off_t>((x % blocks) * kBlock);
    const ssize_t n = write ? ::pwrite(fd, buf, kBlock, off) : ::pread(fd, buf, kBlock, off);
    if (n != static_cast<ssize_t>(kBlock)) die(write ? "pwrite" : "pread");
  }
  if (write && ::fsync(fd) != 0) die("fsync");
  ::close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "now" && argc == 2) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    std::printf("%lld\n", static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec);
    return 0;
  }
  if (cmd == "rand" && argc == 5 && (std::strcmp(argv[2], "read") == 0 || std::strcmp(argv[2], "write") == 0))
    return rand_io(argv[2][0] == 'w', argv[3], std::strtoul(argv[4], nullptr, 10));
  std::fprintf(stderr, "usage: fsbench_io now | fsbench_io rand read|write FILE OPS\n");
  return 2;
}
