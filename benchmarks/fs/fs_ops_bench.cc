// One FUSE request through FuseServer::handle() against the host syscalls it
// stands for, on a temp share holding `data` (1 MiB) and `dir/` (1000 empty
// files). No KVM and no virtqueue: this is the server's own overhead.
// Requests are built before the timed loops; every reply is checked, and a
// failure ends the benchmark with an error rather than a fast wrong number.
// Pairs are named fuse_<op> / syscall_<op>; report.py matches them up.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/fs/fuse_share.h"
#include "vmm/unique_fd.h"

namespace ksbox::bench_fs {
namespace {

// Built on first use and shared by all benchmarks; nullptr (benchmark
// skipped) if it cannot be.
Share* share(benchmark::State& st) {
  static std::unique_ptr<Share> s;
  static std::string error;
  if (!s && error.empty()) {
    try {
      s = std::make_unique<Share>();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (!s) st.SkipWithError(error.c_str());
  return s.get();
}

bool sys_ok(bool ok, const char* what, benchmark::State& st) {
  if (!ok) st.SkipWithError((std::string(what) + ": " + std::strerror(errno)).c_str());
  return ok;
}

// The pages READ and WRITE visit: random, the same sequence on both sides.
const std::vector<uint32_t>& random_pages() {
  static const std::vector<uint32_t> seq = [] {
    std::mt19937 rng(42);
    std::uniform_int_distribution<uint32_t> page(0, kPages - 1);
    std::vector<uint32_t> v(4096);
    for (auto& p : v) p = page(rng);
    return v;
  }();
  return seq;
}

// ---- GETATTR of a looked-up file vs fstat on an O_PATH fd ----

void fuse_getattr(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  const fuse_getattr_in gi{};
  const Request req(FUSE_GETATTR, s->data, bytes_of(gi));
  Reply rep(sizeof(fuse_attr_out));
  for (auto _ : st)
    if (!s->call(req, rep, st)) break;
}

void syscall_getattr(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  const UniqueFd fd(::open(s->host("data").c_str(), O_PATH | O_CLOEXEC));
  if (!sys_ok(fd.valid(), "open", st)) return;
  struct stat sb{};
  for (auto _ : st) {
    if (!sys_ok(::fstat(fd.get(), &sb) == 0, "fstat", st)) break;
    benchmark::DoNotOptimize(sb);
  }
}

// ---- LOOKUP + FORGET of a name vs openat O_PATH + fstat + close ----

void fuse_lookup(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  std::vector<Request> lookups;
  for (size_t i = 0; i < kDirEntries; ++i)
    lookups.emplace_back(FUSE_LOOKUP, s->dir, std::span<const uint8_t>{}, cstring_bytes(entry_name(i)));
  fuse_forget_in fi{};
  fi.nlookup = 1;
  Request forget(FUSE_FORGET, 0, bytes_of(fi));
  Reply rep(sizeof(fuse_entry_out));
  const size_t inodes = s->server.fs().inode_count();
  size_t i = 0;
  for (auto _ : st) {
    if (!s->call(lookups[i++ % kDirEntries], rep, st)) break;
    forget.set_nodeid(rep.as<fuse_entry_out>().nodeid);
    s->server.handle(forget.spans(), rep.spans());  // no reply to FORGET
  }
  if (s->server.fs().inode_count() != inodes) st.SkipWithError("FORGET left inodes behind");
}

void syscall_lookup(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  const UniqueFd dfd(::open(s->host("dir").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!sys_ok(dfd.valid(), "open", st)) return;
  std::vector<std::string> names;
  for (size_t i = 0; i < kDirEntries; ++i) names.push_back(entry_name(i));
  struct stat sb{};
  size_t i = 0;
  for (auto _ : st) {
    const UniqueFd fd(::openat(dfd.get(), names[i++ % kDirEntries].c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!sys_ok(fd.valid() && ::fstat(fd.get(), &sb) == 0, "openat+fstat", st)) break;
    benchmark::DoNotOptimize(sb);
  }
}

// ---- CREATE + RELEASE + UNLINK (+ FORGET) of a new name vs openat O_CREAT + close + unlinkat ----

void fuse_create(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  fuse_create_in ci{};
  ci.flags = O_WRONLY | O_CREAT | O_EXCL;
  ci.mode = S_IFREG | 0644;
  const std::string name = "new";
  const Request create(FUSE_CREATE, FUSE_ROOT_ID, bytes_of(ci), cstring_bytes(name));
  const Request unlink(FUSE_UNLINK, FUSE_ROOT_ID, {}, cstring_bytes(name));
  fuse_release_in ri{};
  Request release(FUSE_RELEASE, 0, bytes_of(ri));
  fuse_forget_in fi{};
  fi.nlookup = 1;
  Request forget(FUSE_FORGET, 0, bytes_of(fi));
  Reply rep(sizeof(fuse_entry_out) + sizeof(fuse_open_out));
  const size_t inodes = s->server.fs().inode_count();
  for (auto _ : st) {
    if (!s->call(create, rep, st)) break;
    const auto entry = rep.as<fuse_entry_out>();
    fuse_open_out oo{};
    std::memcpy(&oo, rep.body().data() + sizeof entry, sizeof oo);
    release.set_nodeid(entry.nodeid);
    release.set_arg(offsetof(fuse_release_in, fh), oo.fh);
    forget.set_nodeid(entry.nodeid);
    if (!s->call(release, rep, st) || !s->call(unlink, rep, st)) break;
    s->server.handle(forget.spans(), rep.spans());  // no reply to FORGET
  }
  if (s->server.fs().inode_count() != inodes) st.SkipWithError("FORGET left inodes behind");
}

void syscall_create(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  const UniqueFd dfd(::open(s->tree.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!sys_ok(dfd.valid(), "open", st)) return;
  for (auto _ : st) {
    const int fd = ::openat(dfd.get(), "new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (!sys_ok(fd >= 0 && ::close(fd) == 0 && ::unlinkat(dfd.get(), "new", 0) == 0, "create+close+unlink", st)) break;
  }
}

// ---- READ / WRITE 4 KiB at random page-aligned offsets vs pread / pwrite ----

// One page through the open `data` handle per iteration, at the random pages.
// The page both sides write from (and the syscall side reads into): page
// aligned, as the guest's page-cache pages are, and one page on both sides,
// so that neither copies from memory the other has in cache.
std::span<uint8_t> io_page() {
  static const std::unique_ptr<uint8_t, decltype(&std::free)> page(
      static_cast<uint8_t*>(std::aligned_alloc(kPage, kPage)), &std::free);
  std::memset(page.get(), 'w', kPage);
  return {page.get(), kPage};
}

void fuse_page_io(benchmark::State& st, uint32_t op) {
  Share* s = share(st);
  if (!s) return;
  const std::span<const uint8_t> payload = io_page();
  std::vector<Request> reqs;
  for (size_t p = 0; p < kPages; ++p) {
    if (op == FUSE_READ) {
      const fuse_read_in ri{.fh = s->data_fh, .offset = p * kPage, .size = kPage};
      reqs.emplace_back(op, s->data, bytes_of(ri));
    } else {
      const fuse_write_in wi{.fh = s->data_fh, .offset = p * kPage, .size = kPage};
      reqs.emplace_back(op, s->data, bytes_of(wi), Request::Borrowed{payload});
    }
  }
  const auto& seq = random_pages();
  Reply rep(op == FUSE_READ ? kPage : sizeof(fuse_write_out));
  size_t i = 0;
  for (auto _ : st) {
    if (!s->call(reqs[seq[i++ % seq.size()]], rep, st)) break;
    const size_t done = op == FUSE_READ ? rep.body().size() : rep.as<fuse_write_out>().size;
    if (done != kPage) {
      st.SkipWithError("short transfer");
      break;
    }
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * kPage));
}

void syscall_page_io(benchmark::State& st, bool write) {
  Share* s = share(st);
  if (!s) return;
  const UniqueFd fd(::open(s->host("data").c_str(), O_RDWR | O_CLOEXEC));
  if (!sys_ok(fd.valid(), "open", st)) return;
  const auto& seq = random_pages();
  const std::span<uint8_t> buf = io_page();
  size_t i = 0;
  for (auto _ : st) {
    const auto off = static_cast<off_t>(seq[i++ % seq.size()] * kPage);
    const ssize_t n = write ? ::pwrite(fd.get(), buf.data(), kPage, off) : ::pread(fd.get(), buf.data(), kPage, off);
    if (!sys_ok(n == static_cast<ssize_t>(kPage), write ? "pwrite" : "pread", st)) break;
    benchmark::DoNotOptimize(buf.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * kPage));
}

void fuse_read(benchmark::State& st) { fuse_page_io(st, FUSE_READ); }
void syscall_read(benchmark::State& st) { syscall_page_io(st, false); }
void fuse_write(benchmark::State& st) { fuse_page_io(st, FUSE_WRITE); }
void syscall_write(benchmark::State& st) { syscall_page_io(st, true); }

// ---- READDIRPLUS of dir, one full pass vs getdents64 + fstatat per entry ----

// One pass as the guest's getdents loop drives it: 4 KiB READDIRPLUS
// requests (Linux 6.1 asks for one page at a time) resuming at the last
// entry's off until an empty reply. Appends the nodeids when `ids` is set.
bool readdirplus_pass(Share& s, Request& req, Reply& rep, benchmark::State& st, std::vector<uint64_t>* ids) {
  uint64_t off = 0;
  size_t entries = 0;
  for (;;) {
    req.set_arg(offsetof(fuse_read_in, offset), off);
    if (!s.call(req, rep, st)) return false;
    const auto body = rep.body();
    if (body.empty()) break;
    size_t pos = 0;
    while (pos + FUSE_NAME_OFFSET_DIRENTPLUS <= body.size()) {
      fuse_direntplus d{};
      std::memcpy(&d, body.data() + pos, FUSE_NAME_OFFSET_DIRENTPLUS);
      if (ids && d.entry_out.nodeid) ids->push_back(d.entry_out.nodeid);
      off = d.dirent.off;
      ++entries;
      pos += FUSE_DIRENTPLUS_SIZE(&d);
    }
    if (pos != body.size()) {
      st.SkipWithError("READDIRPLUS reply is not whole records");
      return false;
    }
  }
  if (entries != kDirEntries + 2) {  // with "." and ".."
    st.SkipWithError("READDIRPLUS pass missed entries");
    return false;
  }
  return true;
}

void fuse_readdirplus(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  fuse_read_in ri{};
  ri.fh = s->dir_fh;
  ri.size = kPage;
  Request req(FUSE_READDIRPLUS, s->dir, bytes_of(ri));
  Reply rep(kPage);
  const size_t inodes = s->server.fs().inode_count();
  // Untimed first pass: every entry becomes a known inode, as after a guest's
  // first `ls -l`; timed passes then add one reference each, as the guest's
  // dentries do, and all are forgotten at the end.
  std::vector<uint64_t> ids;
  if (!readdirplus_pass(*s, req, rep, st, &ids)) return;
  uint64_t passes = 1;
  for (auto _ : st) {
    if (!readdirplus_pass(*s, req, rep, st, nullptr)) break;
    ++passes;
  }
  fuse_batch_forget_in bf{};
  bf.count = static_cast<uint32_t>(ids.size());
  std::vector<uint8_t> ones;
  for (const uint64_t id : ids) {
    const fuse_forget_one f{id, passes};
    const auto b = bytes_of(f);
    ones.insert(ones.end(), b.begin(), b.end());
  }
  const Request forget(FUSE_BATCH_FORGET, 0, bytes_of(bf), ones);
  s->server.handle(forget.spans(), rep.spans());
  if (s->server.fs().inode_count() != inodes) st.SkipWithError("BATCH_FORGET left inodes behind");
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * kDirEntries));
}

void syscall_readdirplus(benchmark::State& st) {
  Share* s = share(st);
  if (!s) return;
  const UniqueFd dfd(::open(s->host("dir").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!sys_ok(dfd.valid(), "open", st)) return;
  alignas(8) static uint8_t buf[32768];  // glibc's readdir buffer size
  struct stat sb{};
  for (auto _ : st) {
    if (!sys_ok(::lseek(dfd.get(), 0, SEEK_SET) == 0, "lseek", st)) break;
    size_t entries = 0;
    long n;
    while ((n = ::syscall(SYS_getdents64, dfd.get(), buf, sizeof buf)) > 0) {
      for (size_t pos = 0; pos < static_cast<size_t>(n);) {
        uint16_t reclen;
        std::memcpy(&reclen, buf + pos + 16, sizeof reclen);  // linux_dirent64.d_reclen
        const char* name = reinterpret_cast<const char*>(buf + pos + 19);
        pos += reclen;
        if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
        if (::fstatat(dfd.get(), name, &sb, AT_SYMLINK_NOFOLLOW) != 0) n = -1;
        ++entries;
      }
      if (n < 0) break;
    }
    if (!sys_ok(n == 0 && entries == kDirEntries, "getdents64+fstatat", st)) break;
    benchmark::DoNotOptimize(sb);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * kDirEntries));
}

BENCHMARK(fuse_getattr);
BENCHMARK(syscall_getattr);
BENCHMARK(fuse_lookup);
BENCHMARK(syscall_lookup);
BENCHMARK(fuse_create);
BENCHMARK(syscall_create);
BENCHMARK(fuse_read);
BENCHMARK(syscall_read);
BENCHMARK(fuse_write);
BENCHMARK(syscall_write);
BENCHMARK(fuse_readdirplus)->Unit(benchmark::kMicrosecond);
BENCHMARK(syscall_readdirplus)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ksbox::bench_fs

BENCHMARK_MAIN();
