// blk_probe: block-device checks run inside the guest by the virtio-blk
// end-to-end tests. Static, shipped in the test initramfs. All I/O is
// O_DIRECT, so errors come back from the write itself. Prints "ok ..." and
// exits 0, or the errno name (EIO, EROFS, ...) of what failed and exits 1.
//
//   blk_probe random DEV SEED COUNT BLOCK   COUNT writes of BLOCK bytes at random offsets
//                                           (blk_pattern.h), then fsync; then reads them back
//   blk_probe fill DEV MIB                  writes MIB MiB of 0x5a from offset 0 in 1 MiB writes;
//                                           prints the error and the offset it happened at
//   blk_probe discard DEV OFFSET LEN        BLKDISCARD
//   blk_probe size DEV                      prints the size in bytes
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "tests/e2e/blk_pattern.h"

namespace {

[[noreturn]] void fail(const char* what) {
  const int err = errno;
  std::printf("%s %s\n", strerrorname_np(err) ? strerrorname_np(err) : "E?", what);
  std::exit(1);
}

int open_dev(const char* dev, int flags) {
  const int fd = ::open(dev, flags | O_DIRECT | O_CLOEXEC);
  if (fd < 0) fail("open");
  return fd;
}

uint64_t dev_size(int fd) {
  uint64_t n = 0;
  if (::ioctl(fd, BLKGETSIZE64, &n) < 0) fail("BLKGETSIZE64");
  return n;
}

void* aligned(size_t n) {
  void* p = nullptr;
  if (::posix_memalign(&p, 4096, n) != 0) std::abort();
  return p;
}

int random_writes(const char* dev, uint64_t seed, unsigned count, size_t block) {
  const int fd = open_dev(dev, O_RDWR);
  const auto writes = ksbox::test::blk::random_writes(seed, count, block, dev_size(fd));
  auto* buf = static_cast<uint8_t*>(aligned(block));
  std::map<uint64_t, const std::vector<uint8_t>*> last;
  for (const auto& w : writes) {
    std::memcpy(buf, w.data.data(), block);
    if (::pwrite(fd, buf, block, static_cast<off_t>(w.offset)) != static_cast<ssize_t>(block)) fail("pwrite");
    last[w.offset] = &w.data;
  }
  if (::fsync(fd) < 0) fail("fsync");
  for (const auto& [off, data] : last) {
    if (::pread(fd, buf, block, static_cast<off_t>(off)) != static_cast<ssize_t>(block)) fail("pread");
    if (std::memcmp(buf, data->data(), block) != 0) {
      std::printf("MISMATCH at %llu\n", static_cast<unsigned long long>(off));
      return 1;
    }
  }
  std::printf("ok %u writes, %zu blocks\n", count, last.size());
  return 0;
}

int fill(const char* dev, unsigned mib) {
  const int fd = open_dev(dev, O_RDWR);
  constexpr size_t kChunk = 1 << 20;
  auto* buf = static_cast<uint8_t*>(aligned(kChunk));
  std::memset(buf, 0x5a, kChunk);
  for (unsigned i = 0; i < mib; ++i) {
    if (::pwrite(fd, buf, kChunk, static_cast<off_t>(i) * kChunk) != static_cast<ssize_t>(kChunk)) {
      const int err = errno;
      std::printf("%s at MiB %u\n", strerrorname_np(err) ? strerrorname_np(err) : "short write", i);
      return 1;
    }
  }
  std::printf("ok %u MiB\n", mib);
  return 0;
}

int discard(const char* dev, uint64_t off, uint64_t len) {
  const int fd = open_dev(dev, O_RDWR);
  uint64_t range[2] = {off, len};
  if (::ioctl(fd, BLKDISCARD, range) < 0) fail("BLKDISCARD");
  std::printf("ok\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "random" && argc == 6)
    return random_writes(argv[2], std::strtoull(argv[3], nullptr, 0), static_cast<unsigned>(std::atoi(argv[4])),
                         std::strtoull(argv[5], nullptr, 0));
  if (cmd == "fill" && argc == 4) return fill(argv[2], static_cast<unsigned>(std::atoi(argv[3])));
  if (cmd == "discard" && argc == 5)
    return discard(argv[2], std::strtoull(argv[3], nullptr, 0), std::strtoull(argv[4], nullptr, 0));
  if (cmd == "size" && argc == 3) {
    std::printf("%llu\n", static_cast<unsigned long long>(dev_size(open_dev(argv[2], O_RDONLY))));
    return 0;
  }
  std::fprintf(stderr, "usage: blk_probe random DEV SEED COUNT BLOCK | fill DEV MIB | discard DEV OFF LEN | size DEV\n");
  return 2;
}
