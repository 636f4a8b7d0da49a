// A fake FUSE driver for the server tests: builds requests as Linux does
// (fuse_in_header + arguments), scatters them over several spans, and parses
// the reply.
#pragma once

#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devices/fs/fuse_server.h"

namespace ksbox::devices::fs::testing {

class TempDir {
 public:
  explicit TempDir(const std::filesystem::path& parent = std::filesystem::temp_directory_path()) {
    std::string t = (parent / "ksbox-fuse-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& p, const std::string& s) { std::ofstream(p) << s; }
inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Request arguments, appended as the driver lays them out.
class Args {
 public:
  template <typename T>
  Args& add(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof v);
    return *this;
  }
  Args& str(std::string_view s) {  // with its NUL
    bytes.insert(bytes.end(), s.begin(), s.end());
    bytes.push_back(0);
    return *this;
  }
  Args& raw(std::string_view s) {
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  std::vector<uint8_t> bytes;
};

struct Reply {
  size_t written = 0;
  fuse_out_header h{};
  std::vector<uint8_t> body;
  int error() const { return h.error; }
  template <typename T>
  T as(size_t off = 0) const {
    T v{};
    EXPECT_GE(body.size(), off + sizeof v);
    if (body.size() >= off + sizeof v) std::memcpy(&v, body.data() + off, sizeof v);
    return v;
  }
};

// Splits `bytes` into spans of sizes cycling through `pattern` (never empty).
inline std::vector<std::span<const uint8_t>> scatter(const std::vector<uint8_t>& bytes,
                                                     std::vector<size_t> pattern = {1, 7, 3, 40, 5}) {
  std::vector<std::span<const uint8_t>> out;
  size_t pos = 0, i = 0;
  while (pos < bytes.size()) {
    const size_t n = std::min(pattern[i++ % pattern.size()], bytes.size() - pos);
    out.emplace_back(bytes.data() + pos, n);
    pos += n;
  }
  return out;
}

class FuseClient {
 public:
  explicit FuseClient(const std::filesystem::path& root, PassthroughOptions opts = {})
      : server(std::make_unique<Passthrough>(root.string(), opts, nullptr)) {}

  // Sends a request with `len` overridden when nonzero; the reply space is
  // `out_size` bytes split into three spans.
  Reply send(uint32_t opcode, uint64_t nodeid, const Args& args = {}, size_t out_size = 1 << 16,
             uint32_t len_override = 0) {
    fuse_in_header h{};
    h.len = len_override ? len_override : static_cast<uint32_t>(sizeof h + args.bytes.size());
    h.opcode = opcode;
    h.unique = ++unique;
    h.nodeid = nodeid;
    std::vector<uint8_t> req(sizeof h + args.bytes.size());
    std::memcpy(req.data(), &h, sizeof h);
    if (!args.bytes.empty()) std::memcpy(req.data() + sizeof h, args.bytes.data(), args.bytes.size());
    const auto in = scatter(req);
    std::vector<uint8_t> out(out_size, 0xee);
    std::vector<std::span<uint8_t>> outs;
    const size_t a = std::min<size_t>(out_size, 5), b = std::min<size_t>(out_size - a, 17);
    outs.emplace_back(out.data(), a);
    outs.emplace_back(out.data() + a, b);
    outs.emplace_back(out.data() + a + b, out_size - a - b);
    Reply r;
    r.written = server.handle(in, outs);
    if (r.written >= sizeof r.h) {
      std::memcpy(&r.h, out.data(), sizeof r.h);
      EXPECT_EQ(r.h.len, r.written);
      EXPECT_EQ(r.h.unique, unique);
      r.body.assign(out.begin() + sizeof r.h, out.begin() + static_cast<ptrdiff_t>(r.written));
    }
    return r;
  }

  Reply init(uint32_t major = 7, uint32_t minor = 38, uint32_t flags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES) {
    Args a;
    fuse_init_in ii{};
    ii.major = major;
    ii.minor = minor;
    ii.max_readahead = 4u << 20;
    ii.flags = flags;
    if (minor >= 36) a.add(ii);
    else a.bytes.assign(reinterpret_cast<uint8_t*>(&ii), reinterpret_cast<uint8_t*>(&ii) + 16);
    return send(FUSE_INIT, 0, a);
  }

  // LOOKUP; returns the entry (nodeid 0 on error, with `err` set).
  fuse_entry_out lookup(uint64_t parent, std::string_view name, int* err = nullptr) {
    const Reply r = send(FUSE_LOOKUP, parent, Args().str(name));
    if (err) *err = r.error();
    return r.error() ? fuse_entry_out{} : r.as<fuse_entry_out>();
  }

  uint64_t open(uint64_t node, uint32_t flags, int* err = nullptr) {
    fuse_open_in oi{};
    oi.flags = flags;
    const Reply r = send(FUSE_OPEN, node, Args().add(oi));
    if (err) *err = r.error();
    return r.error() ? 0 : r.as<fuse_open_out>().fh;
  }

  Reply read(uint64_t node, uint64_t fh, uint64_t off, uint32_t size) {
    fuse_read_in ri{};
    ri.fh = fh;
    ri.offset = off;
    ri.size = size;
    return send(FUSE_READ, node, Args().add(ri), sizeof(fuse_out_header) + size);
  }

  Reply write(uint64_t node, uint64_t fh, uint64_t off, std::string_view data) {
    fuse_write_in wi{};
    wi.fh = fh;
    wi.offset = off;
    wi.size = static_cast<uint32_t>(data.size());
    return send(FUSE_WRITE, node, Args().add(wi).raw(data));
  }

  // CREATE (or TMPFILE); the entry and the handle (nodeid 0 on error).
  std::pair<fuse_entry_out, uint64_t> create(uint64_t parent, std::string_view name, uint32_t flags,
                                             uint32_t mode = S_IFREG | 0644, int* err = nullptr,
                                             uint32_t opcode = FUSE_CREATE) {
    fuse_create_in ci{};
    ci.flags = flags;
    ci.mode = mode;
    const Reply r = send(opcode, parent, Args().add(ci).str(name));
    if (err) *err = r.error();
    if (r.error()) return {};
    return {r.as<fuse_entry_out>(), r.as<fuse_open_out>(sizeof(fuse_entry_out)).fh};
  }

  uint64_t count(Malformed m) const { return server.stats().count(m); }

  FuseServer server;
  uint64_t unique = 0;
};

// Reads a whole directory with READDIR(PLUS) in small chunks; name → entry.
// `each`, if set, sees every name as it arrives (before the next chunk).
inline std::map<std::string, fuse_entry_out> list_dir(FuseClient& c, uint64_t node, bool plus, uint32_t chunk, int* calls,
                                                      const std::function<void(const std::string&)>& each = {}) {
  fuse_open_in oi{};
  const Reply o = c.send(FUSE_OPENDIR, node, Args().add(oi));
  EXPECT_EQ(o.error(), 0);
  const uint64_t fh = o.as<fuse_open_out>().fh;
  std::map<std::string, fuse_entry_out> names;
  uint64_t off = 0;
  *calls = 0;
  for (;;) {
    fuse_read_in ri{};
    ri.fh = fh;
    ri.offset = off;
    ri.size = chunk;
    const Reply r = c.send(plus ? FUSE_READDIRPLUS : FUSE_READDIR, node, Args().add(ri));
    EXPECT_EQ(r.error(), 0);
    if (r.body.empty() || r.error()) break;
    ++*calls;
    EXPECT_LE(r.body.size(), chunk);
    for (size_t pos = 0; pos < r.body.size();) {
      fuse_entry_out e{};
      if (plus) {
        std::memcpy(&e, r.body.data() + pos, sizeof e);
        pos += sizeof e;
      }
      fuse_dirent de{};
      std::memcpy(&de, r.body.data() + pos, FUSE_NAME_OFFSET);
      const std::string name(reinterpret_cast<const char*>(r.body.data() + pos + FUSE_NAME_OFFSET), de.namelen);
      pos += FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de.namelen);
      EXPECT_FALSE(names.contains(name)) << name;
      names[name] = e;
      if (each) each(name);
      off = de.off;
    }
  }
  fuse_release_in rel{};
  rel.fh = fh;
  EXPECT_EQ(c.send(FUSE_RELEASEDIR, node, Args().add(rel)).error(), 0);
  return names;
}

}  // namespace ksbox::devices::fs::testing
