// libFuzzer target for the FUSE server (devices/fs/): arbitrary request
// sequences against a passthrough share of a small temp tree.
//
// Input: byte 0 = flags (bit 0: send a valid INIT first; bit 1: fix up each
// request's fuse_in_header.len to the bytes that arrive, so mutations get
// past the length check; bit 2: a read-only share; bit 3: a 2-fd O_PATH
// cache, so inodes are re-opened by name; bit 4: the writeback cache
// offered; bit 5: the worktree policy, and an INIT that offers
// FUSE_NO_OPENDIR_SUPPORT: directories read with fh 0; bit 6: with bit 5,
// the INIT offers FUSE_NO_OPEN_SUPPORT too: files used with fh 0). Then
// records: u16
// request length, u16 reply space, u8 split (low nibble: readable chunk
// size - 1, high nibble: where the writable space splits), then the request
// bytes (header + arguments).
// Nodeids and file handles are small sequential numbers (root = 1), so
// mutated requests hit real inodes.
//
// Checked: replies stay inside the writable space and are well formed; the
// tree outside the share is never touched; tables stay bounded; a FIFO in the
// share is never opened (that would hang: libFuzzer reports a timeout); the
// share never gains a device node, a setuid/setgid bit, or a trusted.* or
// security.capability xattr (a fuzzer running as root could make them all).
// Seeds: gen_fuse_server_seeds.py.
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devices/fs/fuse_server.h"
#include "tests/fuzz/fuzz_check.h"

namespace ksbox::devices::fs {
namespace {

namespace sfs = std::filesystem;

struct Env {
  Env() {
    std::string t = (sfs::temp_directory_path() / "ksbox-fuse-fuzz-XXXXXX").string();
    CHECK(::mkdtemp(t.data()) != nullptr);
    dir = t;
    sfs::create_directory(dir / "outside");
    std::ofstream(dir / "outside" / "secret") << "secret";
  }
  ~Env() {
    std::error_code ec;
    sfs::remove_all(dir, ec);
  }
  // A fresh share for every input.
  void reset_share() {
    std::error_code ec;
    sfs::remove_all(dir / "share", ec);
    sfs::create_directory(dir / "share");
    sfs::create_directory(dir / "share" / "d");
    std::ofstream(dir / "share" / "f") << "hello world";
    std::ofstream(dir / "share" / "d" / "g") << "nested";
    sfs::create_symlink("../outside/secret", dir / "share" / "up");
    sfs::create_symlink(dir / "outside", dir / "share" / "abs");
    CHECK(::mkfifo((dir / "share" / "fifo").c_str(), 0644) == 0);
    ::setxattr((dir / "share" / "f").c_str(), "user.k", "v", 1, 0);  // where supported
  }
  void check_share() const {
    std::error_code ec;
    for (sfs::recursive_directory_iterator it(dir / "share", ec), end; !ec && it != end; it.increment(ec)) {
      struct stat st{};
      if (::lstat(it->path().c_str(), &st) != 0) continue;  // raced with nothing: single-threaded
      CHECK(!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode));
      CHECK((st.st_mode & (S_ISUID | S_ISGID)) == 0);
      char names[4096];
      const ssize_t n = ::llistxattr(it->path().c_str(), names, sizeof names);
      for (ssize_t pos = 0; pos < n;) {
        const std::string_view name(names + pos);
        CHECK(!name.starts_with("trusted.") && name != "security.capability");
        pos += static_cast<ssize_t>(name.size()) + 1;
      }
    }
  }
  void check_outside() const {
    size_t n = 0;
    for (const auto& e : sfs::directory_iterator(dir / "outside")) n += e.path().filename() == "secret" ? 1 : 100;
    CHECK(n == 1);
    CHECK(sfs::file_size(dir / "outside" / "secret") == 6);
    for (const auto& e : sfs::directory_iterator(dir)) {
      const auto name = e.path().filename();
      CHECK(name == "outside" || name == "share");
    }
  }
  sfs::path dir;
};

Env& env() {
  static Env e;
  return e;
}

class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> d) : d_(d) {}
  bool empty() const { return pos_ >= d_.size(); }
  template <typename T>
  T take() {
    T v{};
    const size_t n = std::min(sizeof v, d_.size() - pos_);
    std::memcpy(&v, d_.data() + pos_, n);
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> bytes(size_t n) {
    n = std::min(n, d_.size() - pos_);
    auto s = d_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
};

void send(FuseServer& server, std::vector<uint8_t> req, size_t out_size, uint8_t split, bool fix_len) {
  if (fix_len && req.size() >= sizeof(fuse_in_header)) {
    const auto len = static_cast<uint32_t>(req.size());
    std::memcpy(req.data(), &len, sizeof len);
  }
  std::vector<std::span<const uint8_t>> in;
  const size_t chunk = (split & 15u) + 1;
  for (size_t pos = 0; pos < req.size(); pos += chunk) in.emplace_back(req.data() + pos, std::min(chunk, req.size() - pos));
  // Guard bytes after the writable space catch any overrun.
  std::vector<uint8_t> out(out_size + 64, 0xa5);
  const size_t cut = std::min<size_t>(split >> 4, out_size);
  const std::span<uint8_t> outs[2] = {{out.data(), cut}, {out.data() + cut, out_size - cut}};
  const size_t n = server.handle(in, outs);
  CHECK(n <= out_size);
  for (size_t i = out_size; i < out.size(); ++i) CHECK(out[i] == 0xa5);
  if (n == 0) return;
  CHECK(n >= sizeof(fuse_out_header));
  fuse_out_header oh{};
  std::memcpy(&oh, out.data(), sizeof oh);
  fuse_in_header ih{};
  std::memcpy(&ih, req.data(), sizeof ih);
  CHECK(oh.len == n);
  CHECK(oh.unique == ih.unique);
  CHECK(oh.error <= 0 && oh.error > -4096);
  if (oh.error != 0) CHECK(n == sizeof oh);
}

}  // namespace
}  // namespace ksbox::devices::fs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ksbox::devices::fs;
  Env& e = env();
  e.reset_share();
  Cursor in({data, size});
  const auto flags = in.take<uint8_t>();
  const bool worktree = (flags & 32) != 0;
  const bool implicit_files = worktree && (flags & 64) != 0;
  PassthroughOptions opts = PassthroughOptions{}.with_cache(worktree ? CachePolicy::kWorktree : CachePolicy::kAuto);
  opts.max_inodes = 64;
  opts.max_handles = 16;
  // A tiny O_PATH fd cache makes most requests re-open their inodes by name.
  opts.max_fds = (flags & 8) ? 2 : 64;
  opts.writeback = (flags & 16) != 0;  // offered, and the INIT below asks for it
  opts.read_only = (flags & 4) != 0;
  FuseServer server(std::make_unique<Passthrough>((e.dir / "share").string(), opts, nullptr));
  if (flags & 1) {
    std::vector<uint8_t> init(sizeof(fuse_in_header) + sizeof(fuse_init_in));
    fuse_in_header h{};
    h.len = static_cast<uint32_t>(init.size());
    h.opcode = FUSE_INIT;
    h.unique = 1;
    fuse_init_in ii{};
    ii.major = 7;
    ii.minor = 38;
    ii.flags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_INIT_EXT | FUSE_WRITEBACK_CACHE |
               (worktree ? FUSE_NO_OPENDIR_SUPPORT : 0) | (implicit_files ? FUSE_NO_OPEN_SUPPORT : 0);
    std::memcpy(init.data(), &h, sizeof h);
    std::memcpy(init.data() + sizeof h, &ii, sizeof ii);
    send(server, std::move(init), 4096, 0x30, false);
    CHECK(server.initialized());
    CHECK(server.fs().writeback() == opts.writeback);
    CHECK(server.fs().implicit_dirs() == worktree);
    CHECK(server.fs().implicit_files() == implicit_files);
  }
  for (int i = 0; i < 64 && !in.empty(); ++i) {
    const auto len = in.take<uint16_t>();
    const auto out_size = in.take<uint16_t>();
    const auto split = in.take<uint8_t>();
    const auto body = in.bytes(len);
    send(server, std::vector<uint8_t>(body.begin(), body.end()), out_size, split, (flags & 2) != 0);
    CHECK(server.fs().inode_count() <= opts.max_inodes);
    CHECK(server.fs().handle_count() <= opts.max_handles);
    CHECK(server.fs().open_inode_fds() <= opts.max_fds);
    CHECK(server.fs().handle_count() + server.fs().dir_stream_count() + server.fs().file_stream_count() <=
          opts.max_handles);
  }
  e.check_outside();
  e.check_share();
  return 0;
}
