// fs_probe: file-system checks run inside the guest by the virtio-fs
// end-to-end tests, for the calls that busybox has no applet for. Static,
// shipped in the test initramfs. Each subcommand prints "ok" (or a value)
// and exits 0, or prints what failed and exits 1.
//
//   fs_probe tmpfile DIR NAME TEXT     open(O_TMPFILE), write, linkat to DIR/NAME
//   fs_probe rename2 OLD NEW FLAG      renameat2 with noreplace|exchange; prints ok or the errno name
//   fs_probe mmap PATH                 shared writable mmap; the data reads back through read()
//   fs_probe xattr PATH                user.* set/get/list/remove
//   fs_probe sparse PATH               fallocate, SEEK_DATA/SEEK_HOLE, punch hole
//   fs_probe copy SRC DST              copy_file_range of the whole file
//   fs_probe locks PATH                fcntl and flock locks conflict across processes
//   fs_probe writers DIR N MIB         N processes write N files of MIB MiB each, and
//                                      interleaved 4 KiB blocks of DIR/shared
//   fs_probe fill PATH MIB             writes MIB MiB of pattern in 1 MiB writes
//   fs_probe xattr PATH                prints "unsupported" when the file system has no user.* xattrs
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::printf("FAIL %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

void write_all(int fd, const void* p, size_t n, off_t off) {
  const auto* b = static_cast<const char*>(p);
  while (n) {
    const ssize_t w = ::pwrite(fd, b, n, off);
    if (w < 0 && errno == EINTR) continue;
    check(w > 0, "pwrite");
    b += w;
    n -= static_cast<size_t>(w);
    off += w;
  }
}

// Deterministic contents: byte i of block `seed` of a file.
char pattern(unsigned seed, size_t i) { return static_cast<char>('a' + (seed * 7 + i * 13) % 26); }

int tmpfile(const std::string& dir, const std::string& name, const std::string& text) {
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR, 0644);
  check(fd >= 0, "open O_TMPFILE");
  write_all(fd, text.data(), text.size(), 0);
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  check(::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, (dir + "/" + name).c_str(), AT_SYMLINK_FOLLOW) == 0, "linkat");
  ::close(fd);
  std::puts("ok");
  return 0;
}

int rename2(const std::string& from, const std::string& to, const std::string& flag) {
  const unsigned flags = flag == "noreplace" ? RENAME_NOREPLACE : flag == "exchange" ? RENAME_EXCHANGE : 0;
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) == 0) {
    std::puts("ok");
  } else {
    std::puts(errno == EEXIST ? "EEXIST" : errno == ENOENT ? "ENOENT" : std::strerror(errno));
  }
  return 0;
}

int mmap_shared(const std::string& path) {
  const size_t len = 3 * 4096 + 100;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  check(fd >= 0, "open");
  check(::ftruncate(fd, static_cast<off_t>(len)) == 0, "ftruncate");
  auto* m = static_cast<char*>(::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  check(m != MAP_FAILED, "mmap");
  for (size_t i = 0; i < len; ++i) m[i] = pattern(1, i);
  check(::msync(m, len, MS_SYNC) == 0, "msync");
  ::munmap(m, len);
  ::close(fd);
  const int rfd = ::open(path.c_str(), O_RDONLY);
  check(rfd >= 0, "reopen");
  std::vector<char> buf(len);
  check(::pread(rfd, buf.data(), len, 0) == static_cast<ssize_t>(len), "pread");
  for (size_t i = 0; i < len; ++i) check(buf[i] == pattern(1, i), "mmap data read back");
  std::puts("ok");
  return 0;
}

int xattr(const std::string& path) {
  if (::setxattr(path.c_str(), "user.ksbox", "value", 5, 0) != 0 && errno == EOPNOTSUPP) {
    std::puts("unsupported");
    return 0;
  }
  check(::getxattr(path.c_str(), "user.ksbox", nullptr, 0) == 5, "setxattr");
  char v[16] = {};
  check(::getxattr(path.c_str(), "user.ksbox", v, sizeof v) == 5 && std::string(v) == "value", "getxattr");
  char list[256] = {};
  const ssize_t n = ::listxattr(path.c_str(), list, sizeof list);
  check(n > 0 && std::string(list, static_cast<size_t>(n)).find("user.ksbox") != std::string::npos, "listxattr");
  check(::removexattr(path.c_str(), "user.ksbox") == 0, "removexattr");
  check(::getxattr(path.c_str(), "user.ksbox", v, sizeof v) < 0 && errno == ENODATA, "xattr gone");
  std::puts("ok");
  return 0;
}

// Only what every file system with holes agrees on (tmpfs counts
// fallocated, unwritten pages as holes; ext4 may not).
int sparse(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  check(fd >= 0, "open");
  const off_t mib = 1 << 20, page = 4096;
  const std::vector<char> block(page, 'd');
  write_all(fd, block.data(), page, 0);
  write_all(fd, block.data(), page, 3 * mib);
  const off_t hole = ::lseek(fd, 0, SEEK_HOLE);
  // Without hole reporting (a FUSE server answering LSEEK with ENOSYS, as
  // ksbox does under its writeback cache) everything is data up to the end.
  const bool holes = hole != 3 * mib + page;
  if (holes) {
    check(hole == page, "SEEK_HOLE after the first block (got " + std::to_string(hole) + ")");
    check(::lseek(fd, page, SEEK_DATA) == 3 * mib, "SEEK_DATA finds the second block");
    check(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, page) == 0, "punch hole");
    check(::lseek(fd, 0, SEEK_DATA) == 3 * mib, "SEEK_DATA skips the punched block");
  } else {
    check(::lseek(fd, page, SEEK_DATA) == page, "SEEK_DATA without holes");
    check(::lseek(fd, 3 * mib + page, SEEK_DATA) < 0 && errno == ENXIO, "SEEK_DATA at the end");
  }
  check(::fallocate(fd, 0, 3 * mib + page, mib - page) == 0, "fallocate");
  struct stat st {};
  check(::fstat(fd, &st) == 0 && st.st_size == 4 * mib, "size after fallocate");
  ::close(fd);
  std::puts(holes ? "ok" : "ok (no holes)");
  return 0;
}

int copy(const std::string& src, const std::string& dst) {
  const int in = ::open(src.c_str(), O_RDONLY);
  const int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  check(in >= 0 && out >= 0, "open");
  struct stat st {};
  check(::fstat(in, &st) == 0, "fstat");
  off_t left = st.st_size;
  while (left > 0) {
    const ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
    check(n > 0, "copy_file_range");
    left -= n;
  }
  std::puts("ok");
  return 0;
}

int locks(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  check(fd >= 0, "open");
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  check(::fcntl(fd, F_SETLK, &fl) == 0, "F_SETLK");
  check(::flock(fd, LOCK_EX) == 0, "flock");
  const pid_t child = ::fork();
  if (child == 0) {
    const int cfd = ::open(path.c_str(), O_RDWR);
    struct flock cl {};
    cl.l_type = F_WRLCK;
    cl.l_whence = SEEK_SET;
    const bool posix_blocked = ::fcntl(cfd, F_SETLK, &cl) < 0 && (errno == EAGAIN || errno == EACCES);
    const bool flock_blocked = ::flock(cfd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    ::_exit(posix_blocked && flock_blocked ? 0 : 1);
  }
  int status = 0;
  check(::waitpid(child, &status, 0) == child, "waitpid");
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a second process was not blocked by the locks");
  std::puts("ok");
  return 0;
}

int writers(const std::string& dir, int n, int mib) {
  const size_t block = 4096, per_file = static_cast<size_t>(mib) << 20;
  const std::string shared = dir + "/shared";
  const int sfd = ::open(shared.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  check(sfd >= 0, "open shared");
  ::close(sfd);
  std::vector<pid_t> kids;
  for (int w = 0; w < n; ++w) {
    const pid_t pid = ::fork();
    check(pid >= 0, "fork");
    if (pid == 0) {
      const int fd = ::open((dir + "/w" + std::to_string(w)).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int s = ::open(shared.c_str(), O_WRONLY);
      if (fd < 0 || s < 0) ::_exit(1);
      std::vector<char> buf(block);
      for (size_t b = 0; b < per_file / block; ++b) {
        for (size_t i = 0; i < block; ++i) buf[i] = pattern(static_cast<unsigned>(w), b * block + i);
        write_all(fd, buf.data(), block, static_cast<off_t>(b * block));
        // Block b of the shared file belongs to writer b % n.
        if (b % static_cast<size_t>(n) == static_cast<size_t>(w))
          write_all(s, buf.data(), block, static_cast<off_t>(b * block));
      }
      ::_exit(::fsync(fd) == 0 && ::fsync(s) == 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  bool ok = true;
  for (const pid_t pid : kids) {
    int status = 0;
    ok = ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
  }
  check(ok, "a writer failed");
  std::puts("ok");
  return 0;
}

int fill(const std::string& path, int mib) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  check(fd >= 0, "open");
  std::vector<char> buf(1 << 20);
  for (int b = 0; b < mib; ++b) {
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = pattern(static_cast<unsigned>(b), i);
    write_all(fd, buf.data(), buf.size(), static_cast<off_t>(b) << 20);
  }
  check(::close(fd) == 0, "close");
  std::puts("ok");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  const auto is = [&](const char* cmd, size_t nargs) { return !a.empty() && a[0] == cmd && a.size() == nargs + 1; };
  if (is("tmpfile", 3)) return tmpfile(a[1], a[2], a[3]);
  if (is("rename2", 3)) return rename2(a[1], a[2], a[3]);
  if (is("mmap", 1)) return mmap_shared(a[1]);
  if (is("xattr", 1)) return xattr(a[1]);
  if (is("sparse", 1)) return sparse(a[1]);
  if (is("copy", 2)) return copy(a[1], a[2]);
  if (is("locks", 1)) return locks(a[1]);
  if (is("fill", 2)) return fill(a[1], std::atoi(a[2].c_str()));
  if (is("writers", 3)) return writers(a[1], std::atoi(a[2].c_str()), std::atoi(a[3].c_str()));
  std::fprintf(stderr, "usage: see the comment at the top of tests/e2e/fs_probe.cc\n");
  return 2;
}
